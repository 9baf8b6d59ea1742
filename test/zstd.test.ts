import { execFileSync } from 'node:child_process';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ZstdInflater } from '../src/decode/zstd.js';
import { synthElectrode } from '../src/tools/synth.js';

/** Zstandard blocks: Node's decoder (where the runtime has one) and the WebAssembly one agree. */

const compress = (data: Uint8Array, level = 3): Uint8Array => new Uint8Array(execFileSync('zstd', [`-${level}`, '-c', '-q'], { input: data }));
const GUARD = 64;

describe('zstd block decoding', async () => {
  const paths = [await ZstdInflater.create(false), await ZstdInflater.create(true)];
  const img = synthElectrode(3, 'scratch', { width: 240, height: 160 });
  const raw = new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.byteLength);
  const frame = compress(raw);

  it('uses Node\'s own decoder where the runtime has it', () => {
    const hasNative = typeof (zlib as unknown as { zstdDecompressSync?: unknown }).zstdDecompressSync === 'function';
    expect(paths[0].usesNative).toBe(false);
    expect(paths[1].usesNative).toBe(hasNative);
  });

  /** Decodes into a window of a guarded buffer; returns the bytes written or the error code, and checks the guards. */
  const decode = (z: ZstdInflater, src: Uint8Array, cap: number): { n?: number; code?: string; out: Uint8Array } => {
    const buf = new Uint8Array(cap + 2 * GUARD).fill(0xa5);
    const dst = buf.subarray(GUARD, GUARD + cap);
    let result: { n?: number; code?: string };
    try {
      result = { n: z.decompressInto(src, dst) };
    } catch (err) {
      result = { code: (err as { code?: string }).code ?? String(err) };
    }
    expect(buf.subarray(0, GUARD).every((b) => b === 0xa5), 'guard before').toBe(true);
    expect(buf.subarray(GUARD + cap).every((b) => b === 0xa5), 'guard after').toBe(true);
    return { ...result, out: dst };
  };

  it.each([0, 1])('path %i: a frame decodes to its bytes exactly', (i) => {
    const r = decode(paths[i], frame, raw.length);
    expect(r.code).toBeUndefined();
    expect(r.n).toBe(raw.length);
    expect(Buffer.from(r.out).equals(Buffer.from(raw))).toBe(true);
  });

  it.each([0, 1])('path %i: a frame larger than the declared block, garbage and a cut frame are TIFF_CORRUPT_DATA, nothing written outside', (i) => {
    expect(decode(paths[i], frame, raw.length - 1).code).toBe('TIFF_CORRUPT_DATA');
    expect(decode(paths[i], frame, 100).code).toBe('TIFF_CORRUPT_DATA');
    const garbage = new Uint8Array(500).map((_, k) => (k * 73 + 11) & 0xff);
    expect(decode(paths[i], garbage, raw.length).code).toBe('TIFF_CORRUPT_DATA');
    const cut = decode(paths[i], frame.subarray(0, frame.length >> 1), raw.length);
    expect(cut.code ?? (cut.n! < raw.length ? 'short' : 'full')).toMatch(/TIFF_CORRUPT_DATA|short/);
  });
});
