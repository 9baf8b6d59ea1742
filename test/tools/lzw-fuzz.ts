import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { lzwDecode } from '../../src/decode/codecs.js';
import { WasmLzw } from '../../src/decode/lzw-wasm.js';
import { decodeTiff } from '../../src/decode/tiff.js';
import { lzwEncode } from '../../src/tools/tiff-writer.js';

/**
 * The LZW fuzz harness: streams that are valid, nearly valid (built code by code, with Clear
 * codes, the KwKwK case, a full table, codes beyond it), mutated (bit flips, cut, spliced) and
 * random; both our decoders run on each with guard bytes around every output they write, and
 * libtiff (tiffcp) decodes the same stream wrapped in a one-strip TIFF.
 */

export interface Case { stream: Uint8Array; cap: number }

/** The decoder's table rules, replayed to pack codes at the width it will read them. */
function packCodes(codes: number[]): Uint8Array {
  const out: number[] = [];
  let bitBuf = 0;
  let bitCount = 0;
  let width = 9;
  let next = 258;
  let old = -1;
  for (const code of codes) {
    bitBuf = (bitBuf * (1 << width) + code) % 2 ** 40;
    bitCount += width;
    while (bitCount >= 8) {
      bitCount -= 8;
      out.push(Math.floor(bitBuf / 2 ** bitCount) & 0xff);
    }
    if (code === 256) {
      next = 258;
      width = 9;
      old = -1;
      continue;
    }
    if (code === 257) break;
    if (old !== -1 && next < 4096) next++;
    if (next === (1 << width) - 1 && width < 12) width++;
    old = code;
  }
  if (bitCount > 0) out.push((bitBuf * (1 << (8 - bitCount))) & 0xff);
  return Uint8Array.from(out);
}

/** A code sequence the decoder mostly accepts: literals, table codes, KwKwK, Clear, rarely a bad code. */
const nearlyValidCodes = fc.record({
  length: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 300 }) }, { weight: 1, arbitrary: fc.integer({ min: 3800, max: 5000 }) }),
  seed: fc.integer(),
  clearRate: fc.constantFrom(0, 0.002, 0.02),
  badRate: fc.constantFrom(0, 0, 0.001, 0.01),
  startWithClear: fc.boolean(),
  endWithEoi: fc.boolean(),
}).map(({ length, seed, clearRate, badRate, startWithClear, endWithEoi }) => {
  let s = seed >>> 0 || 1;
  const rand = (): number => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const codes: number[] = startWithClear ? [256] : [];
  let next = 258;
  let old = -1;
  for (let i = 0; i < length; i++) {
    const r = rand();
    let code: number;
    if (r < clearRate) code = 256;
    else if (r < clearRate + badRate) code = Math.min(4095, next + 1 + Math.floor(rand() * 20)); // beyond the table
    else if (old === -1 || next === 258 || rand() < 0.3) code = Math.floor(rand() * 256);
    else if (rand() < 0.05 && next < 4096) code = next; // KwKwK
    else code = 258 + Math.floor(rand() * (next - 258));
    codes.push(code);
    if (code === 256) {
      next = 258;
      old = -1;
      continue;
    }
    if (old !== -1 && next < 4096) next++;
    old = code;
  }
  if (endWithEoi) codes.push(257);
  return packCodes(codes);
});

/** Real streams from our encoder over data with structure (runs, ramps, noise). */
const encoded = fc.record({ n: fc.integer({ min: 0, max: 6000 }), kind: fc.integer({ min: 0, max: 3 }), seed: fc.integer() }).map(({ n, kind, seed }) => {
  let s = seed >>> 0 || 1;
  const rand = (): number => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 24;
  const data = Uint8Array.from({ length: n }, (_, i) => [rand(), i & 0xff, (i >> 6) & 0xff, i % 3 ? 7 : rand()][kind]);
  return new Uint8Array(lzwEncode(data));
});

const mutate = (base: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> =>
  fc.tuple(base, fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.nat(), fc.nat({ max: 255 })), { minLength: 1, maxLength: 4 })).map(([stream, edits]) => {
    let b = Array.from(stream);
    for (const [op, at, value] of edits) {
      const i = b.length ? at % b.length : 0;
      if (op === 0 && b.length) b[i] ^= 1 << (value & 7); // flip a bit
      else if (op === 1 && b.length) b[i] = value; // replace a byte
      else if (op === 2) b = b.slice(0, i); // cut
      else if (op === 3) b.splice(i, 0, value, (value * 31) & 0xff); // insert
      else b = b.concat(b.slice(i, i + 1 + (value % 32))); // repeat a piece at the end
    }
    return Uint8Array.from(b);
  });

export const streams: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 3, arbitrary: nearlyValidCodes },
  { weight: 2, arbitrary: encoded },
  { weight: 3, arbitrary: mutate(fc.oneof(encoded, nearlyValidCodes)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 600 }) },
);

/** A stream and an output capacity: its natural length, a little less or more, or anything. */
export const cases: fc.Arbitrary<Case> = fc.tuple(streams, fc.integer({ min: 0, max: 4 }), fc.nat({ max: 70_000 })).map(([stream, pick, any]) => {
  const natural = naturalLength(stream);
  const cap = [natural, Math.max(0, natural - 1 - (any % 9)), natural + 1 + (any % 9), any % (2 * natural + 2), natural][pick];
  return { stream, cap };
});

/**
 * How many bytes the JavaScript decoder makes of a stream given room for all; for a stream that
 * fails, the most it makes before the failure (capacities around it reach both sides).
 */
export function naturalLength(stream: Uint8Array): number {
  const room = new Uint8Array(Math.ceil(stream.length * 4096 / 9) + 16);
  const decodes = (cap: number): number | null => {
    try {
      return lzwDecode(stream, room.subarray(0, cap));
    } catch {
      return null;
    }
  };
  const all = decodes(room.length);
  if (all !== null) return all;
  let lo = 0;
  let hi = room.length; // decodes(lo) succeeds, decodes(hi) fails
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (decodes(mid) !== null) lo = mid;
    else hi = mid;
  }
  return lo;
}

const GUARD = 64;
const PATTERN = 0xa5;

export type Outcome = { ok: true; bytes: string } | { ok: false; error: string };

/** The kind of an LZW error, as both decoders word it. */
function kind(err: unknown): string {
  const m = (err as Error).message;
  return /before any string|beyond the table|after the table is full/.exec(m)?.[0] ?? `other: ${m}`;
}

const intact = (b: Uint8Array): boolean => b.every((x) => x === PATTERN);

/** The JavaScript decoder into a window of a guarded buffer. */
export function runJs(c: Case): Outcome & { guard: boolean } {
  const buf = new Uint8Array(c.cap + 2 * GUARD).fill(PATTERN);
  const dst = buf.subarray(GUARD, GUARD + c.cap);
  let o: Outcome;
  try {
    const n = lzwDecode(c.stream, dst);
    o = { ok: true, bytes: Buffer.from(dst.subarray(0, n)).toString('hex') };
  } catch (err) {
    o = { ok: false, error: kind(err) };
  }
  return { ...o, guard: intact(buf.subarray(0, GUARD)) && intact(buf.subarray(GUARD + c.cap)) };
}

/**
 * The WebAssembly kernel, with guards in its own memory too: nothing written into the block it
 * reads, between the block and the output, or past the output's documented slack.
 */
export function runWasm(kernel: WasmLzw, c: Case): Outcome & { guard: boolean } {
  const { at, out, end, memory } = kernel.layout(c.stream.length, c.cap);
  const mem = (): Uint8Array => new Uint8Array(memory.buffer);
  mem().fill(PATTERN, at, end + GUARD);
  const buf = new Uint8Array(c.cap + 2 * GUARD).fill(PATTERN);
  const dst = buf.subarray(GUARD, GUARD + c.cap);
  let o: Outcome;
  try {
    const n = kernel.decodeInto(c.stream, dst);
    o = { ok: true, bytes: Buffer.from(dst.subarray(0, n)).toString('hex') };
  } catch (err) {
    o = { ok: false, error: kind(err) };
  }
  const m = mem();
  const blockKept = Buffer.from(m.subarray(at, at + c.stream.length)).equals(Buffer.from(c.stream));
  const guard = intact(buf.subarray(0, GUARD)) && intact(buf.subarray(GUARD + c.cap))
    && blockKept && intact(m.subarray(at + c.stream.length, out)) && intact(m.subarray(end, end + GUARD));
  return { ...o, guard };
}

/** A one-strip, 16-bit gray, LZW TIFF holding `stream` as its strip, `width` × `height` pixels. */
export function tiffWithStrip(width: number, height: number, stream: Uint8Array): Buffer {
  const entries: Array<[number, number, number]> = [[256, 3, width], [257, 3, height], [258, 3, 16], [259, 3, 5], [262, 3, 1], [273, 4, 0], [277, 3, 1], [278, 3, height], [279, 4, stream.length]];
  const ifdBytes = 2 + entries.length * 12 + 4;
  const dataAt = 8 + ifdBytes;
  const b = Buffer.alloc(dataAt + stream.length);
  b.write('II', 0);
  b.writeUInt16LE(42, 2);
  b.writeUInt32LE(8, 4);
  b.writeUInt16LE(entries.length, 8);
  entries.forEach(([tag, type, value], i) => {
    const at = 10 + i * 12;
    b.writeUInt16LE(tag, at);
    b.writeUInt16LE(type, at + 2);
    b.writeUInt32LE(1, at + 4);
    if (type === 3) b.writeUInt16LE(value, at + 8);
    else b.writeUInt32LE(tag === 273 ? dataAt : value, at + 8);
  });
  b.set(stream, dataAt);
  return b;
}

/** The image a capture of `cap` bytes would be: 8 pixels wide, as many rows as fit (at least one). */
export function geometry(cap: number): { width: number; height: number } {
  return { width: 8, height: Math.max(1, Math.floor(cap / 16)) };
}

/**
 * libtiff writes the strip back uncompressed (`tiffcp -c none`); the result is the pixel bytes or
 * an error. libtiff reads a stream whose first byte is 0 and second byte odd as pre-1995
 * bit-reversed LZW ("Old-style LZW codes"); our decoders refuse those (see codecs.ts).
 */
export async function libtiffOutcome(tif: Buffer, dir: string): Promise<Outcome> {
  const src = join(dir, 'in.tif');
  const dst = join(dir, 'out.tif');
  writeFileSync(src, tif);
  rmSync(dst, { force: true });
  const code = await new Promise<number>((resolve) => {
    const p = spawn('tiffcp', ['-c', 'none', src, dst], { stdio: ['ignore', 'ignore', 'ignore'] });
    p.on('exit', (c) => resolve(c ?? -1));
    p.on('error', () => resolve(-1));
  });
  if (code !== 0) return { ok: false, error: `tiffcp exit ${code}` };
  try {
    const image = await decodeTiff(readFileSync(dst));
    return { ok: true, bytes: Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength).toString('hex') };
  } catch (err) {
    return { ok: false, error: `unreadable tiffcp output: ${(err as Error).message}` };
  }
}

/** Our whole decode of the same file: pixels or an error code. */
export async function oursOutcome(tif: Buffer): Promise<Outcome> {
  try {
    const image = await decodeTiff(tif);
    return { ok: true, bytes: Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength).toString('hex') };
  } catch (err) {
    return { ok: false, error: `${(err as { code?: string }).code ?? ''}: ${(err as Error).message}` };
  }
}

/**
 * The one difference from libtiff we keep: a stream that goes on after its table is full (4096
 * entries) without a Clear code. TIFF 6.0's encoder clears before that, libtiff's own code says
 * such a code should be refused, and libtiff 4.5 refuses some of them ("Using code not yet in
 * table") but decodes others by reusing table slots; we refuse them all.
 */
export function pastFullTable(o: Outcome): boolean {
  return !o.ok && o.error.includes('after the table is full');
}

export function scratchDir(): string {
  return mkdtempSync(join(tmpdir(), 'xray-qc-lzw-fuzz-'));
}
