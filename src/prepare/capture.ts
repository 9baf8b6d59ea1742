import { createHash } from 'node:crypto';
import { DecodeKernels } from '../decode/kernels.js';
import { readCaptureFile, type CaptureBytes } from '../decode/capture-file.js';
import { decodeTiff, type DecodeOptions, type Scratch } from '../decode/tiff.js';
import { toXrayError } from '../errors.js';
import type { IntensityStats, PreparedCapture } from '../pipeline/messages.js';
import { histogram16, percentilesFromHistogram } from '../convert/percentile.js';
import type { Preprocessor } from './preprocessor.js';

/** A test hook: preparing a file whose name contains this text throws an unexpected (non-coded) error. */
export interface FaultInjection { throwOnNameContaining: string }

/**
 * Read, hash, decode, convert, resize, normalise: everything before inference. What the file
 * contains comes back as a coded failure; an exception that is not one of ours is our bug, not the
 * capture's: INTERNAL_ERROR, with its stack.
 */
export async function prepareCapture(file: string, preprocessor: Preprocessor, decode: DecodeOptions, tensor?: Float32Array, scratch?: ScratchBuffers, inject?: FaultInjection): Promise<PreparedCapture> {
  const t0 = performance.now();
  let capture: CaptureBytes | null = null;
  let sha256: string | null = null;
  const reuse = scratch?.acquire(preprocessor);
  try {
    capture = await readCaptureFile(file, decode, reuse);
    sha256 = createHash('sha256').update(capture.bytes).digest('hex');
    if (inject && file.includes(inject.throwOnNameContaining)) throw new TypeError(`injected fault (test hook) while preparing ${file}`);
    const image = await decodeTiff(capture.bytes, decode, reuse);
    const c = preprocessor.contract;
    const stats = intensityStats(image.data, c.conversion === 'global' || c.conversion === 'mixed' ? c.bounds : null);
    const t1 = performance.now();
    const pre = preprocessor.run(image, tensor);
    const t2 = performance.now();
    return { ok: true, file, stat: stat(capture), sha256, width: image.width, height: image.height, tensor: pre.tensor,
      localBounds: pre.localBounds, decodeMs: t1 - t0, preprocessMs: t2 - t1, stats, ...(image.text && Object.keys(image.text).length ? { text: image.text } : {}) };
  } catch (err) {
    const e = toXrayError(err, 'INTERNAL_ERROR');
    const stack = e.code === 'INTERNAL_ERROR' && err instanceof Error ? err.stack : undefined;
    return { ok: false, file, stat: capture ? stat(capture) : null, sha256, error: { code: e.code, message: e.message, ...(stack ? { stack } : {}) } };
  } finally {
    if (reuse) scratch!.release();
  }
}

/** What the conversion saw, for drift: from one 65,536-bin histogram (~2 ms for 2.4 M pixels, in the preparation thread). */
export function intensityStats(data: Uint16Array, bounds: { min: number; max: number } | null): IntensityStats {
  const hist = histogram16(data);
  const [p0_01, p50, p99_99] = percentilesFromHistogram(hist, [0.01, 50, 99.99]);
  if (!bounds) return { clipLow: null, clipHigh: null, p0_01, p50, p99_99 };
  let low = 0;
  let high = 0;
  for (let v = 0; v < Math.min(bounds.min, 65536); v++) low += hist[v];
  for (let v = Math.max(0, Math.floor(bounds.max) + 1); v < 65536; v++) high += hist[v];
  return { clipLow: low / data.length, clipHigh: high / data.length, p0_01, p50, p99_99 };
}

/**
 * The file and pixel buffers of one preparation thread, reused capture after capture (see
 * `Scratch`). Only one preparation at a time uses them; a second one meanwhile allocates.
 */
export class ScratchBuffers {
  private file = Buffer.allocUnsafeSlow(0);
  private data = new Uint16Array(0);
  private busy = false;
  private readonly kernels = DecodeKernels.create();

  /** With `home`, pixels go into the preprocessor's own memory (no copy there; see pixelBuffer). */
  acquire(home?: Pick<Preprocessor, 'pixelBuffer'>): Scratch | undefined {
    if (this.busy) return undefined;
    this.busy = true;
    return {
      kernels: this.kernels,
      bytes: (size) => {
        if (this.file.length < size) this.file = Buffer.allocUnsafeSlow(size);
        return this.file.subarray(0, size);
      },
      pixels: (count) => {
        const inKernel = home?.pixelBuffer(count);
        if (inKernel) return inKernel;
        if (this.data.length < count) this.data = new Uint16Array(count);
        return this.data.subarray(0, count);
      },
    };
  }

  release(): void {
    this.busy = false;
  }
}

function stat(c: CaptureBytes): { size: number; mtimeMs: number } {
  return { size: c.size, mtimeMs: c.mtimeMs };
}
