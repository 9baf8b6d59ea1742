import { createHash } from 'node:crypto';
import { decodeTiff, readCaptureFile, type CaptureBytes, type DecodeOptions } from '../decode/tiff.js';
import { toXrayError, type ErrorCode } from '../errors.js';
import type { Preprocessor } from '../preprocess/preprocessor.js';

/** Stage 1 of scoring, as plain data (it crosses a thread boundary). */
export type PreparedData =
  | {
      ok: true; file: string; capture: { size: number; mtimeMs: number }; sha256: string; width: number; height: number;
      tensor: Float32Array; localBounds: { min: number; max: number } | null; decodeMs: number; preprocessMs: number;
    }
  | { ok: false; file: string; capture: { size: number; mtimeMs: number } | null; sha256: string | null; code: ErrorCode; message: string };

/** Read, hash, decode, convert, resize, normalise: everything before inference. */
export async function prepareCapture(file: string, preprocessor: Preprocessor, decode: DecodeOptions, tensor?: Float32Array): Promise<PreparedData> {
  const t0 = performance.now();
  let capture: CaptureBytes | null = null;
  let sha256: string | null = null;
  try {
    capture = await readCaptureFile(file, decode);
    sha256 = createHash('sha256').update(capture.bytes).digest('hex');
    const image = await decodeTiff(capture.bytes, decode);
    const t1 = performance.now();
    const pre = preprocessor.run(image, tensor);
    const t2 = performance.now();
    return { ok: true, file, capture: stat(capture), sha256, width: image.width, height: image.height, tensor: pre.tensor,
      localBounds: pre.localBounds, decodeMs: t1 - t0, preprocessMs: t2 - t1 };
  } catch (err) {
    const e = toXrayError(err, 'TIFF_CORRUPT_DATA');
    return { ok: false, file, capture: capture ? stat(capture) : null, sha256, code: e.code, message: e.message };
  }
}

function stat(c: CaptureBytes): { size: number; mtimeMs: number } {
  return { size: c.size, mtimeMs: c.mtimeMs };
}
