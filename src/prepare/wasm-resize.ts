import { compileKernel, instantiate, reserve } from '../wasm.js';
import { RESIZE_WASM_BASE64 } from './resize-wasm.js';
import { verticalPass, type ResizePlan } from './resize.js';

/**
 * The fused lookup table → INTER_LINEAR resize → normalisation of `resizeLutInto`, run by the
 * WebAssembly kernel (resize.wat: per source row the table then the horizontal pass, SIMD where
 * the plan allows; SIMD vertical pass and normalisation). Bit-identical to the JavaScript path
 * (test/resize.test.ts) and ~6× faster (docs/performance.md). One instance per thread; its memory
 * holds the table, the capture (the preparation stage lets the decoder write it there:
 * `pixels`), the pass's tables, two horizontal rows and a few output rows, grown as needed and
 * reused.
 */

interface Exports {
  memory: WebAssembly.Memory;
  hrow(data: number, sw: number, lut: number, tmp: number, blk: number, nblk: number, xw: number, ntail: number, out: number): void;
  vemit(ra: number, rb: number, b0: number, b1: number, dw: number, channels: number, o0: number, o1: number, o2: number,
    s0: number, t0: number, s1: number, t1: number, s2: number, t2: number): void;
}

/** Compiled when this module is first imported in a thread (null: no WebAssembly SIMD here). */
const KERNEL = compileKernel(RESIZE_WASM_BASE64);

/** True where the runtime has WebAssembly SIMD (Node ≥ 16.4); else the JavaScript path is used. */
export function wasmKernelAvailable(): boolean {
  return KERNEL !== null;
}

export interface Channel {
  scale: number;
  shift: number;
  /** Element offset of this channel's plane in the output tensor. */
  offset: number;
}

const align = (n: number): number => (n + 15) & ~15;
/** Output rows per copy out of the kernel's memory. */
const CHUNK = 16;

/**
 * Where everything lives in the kernel's memory for `count` source pixels, rows of `sw` and
 * `dw` destination columns, room for 3 channels: the table and the capture first (the capture's
 * place depends only on the table), so a decoder can write the capture there before the plan
 * is known (`pixels`).
 */
function layout(count: number, sw: number, dw: number) {
  const LUT = 0;
  const DATA = LUT + 65536;
  const BLK = align(DATA + count * 2);
  const XW = BLK + Math.ceil(dw / 8) * 64;
  const ROW_A = align(XW + dw * 12);
  const ROW_B = align(ROW_A + dw * 4 + 32);
  const OUT = align(ROW_B + dw * 4 + 32);
  const chunkPlane = CHUNK * dw * 4;
  const TMP = align(OUT + 3 * chunkPlane + 16);
  return { LUT, DATA, BLK, XW, ROW_A, ROW_B, OUT, chunkPlane, TMP, end: TMP + sw + 32 };
}

/**
 * The SIMD blocks of the horizontal pass (resize.wat `hrow`), or 0 blocks when some 8 adjacent
 * columns read from more than 16 source bytes (downscales beyond ~1.8×): then every column goes
 * the scalar way.
 */
function writeBlocks(plan: ResizePlan, mem: ArrayBuffer, BLK: number, XW: number): number {
  const { xofs, alpha, dstWidth: dw } = plan;
  const xw = new Int32Array(mem, XW, dw * 3);
  for (let dx = 0; dx < dw; dx++) {
    xw[3 * dx] = xofs[dx];
    xw[3 * dx + 1] = alpha[2 * dx];
    xw[3 * dx + 2] = alpha[2 * dx + 1];
  }
  const nblk = Math.floor(dw / 8);
  for (let b = 0; b < nblk; b++) if (xofs[8 * b + 7] + 1 - xofs[8 * b] > 15) return 0;
  const i32 = new Int32Array(mem, BLK, nblk * 16);
  const mask = new Uint8Array(mem, BLK, nblk * 64);
  const w = new Int16Array(mem, BLK, nblk * 32);
  for (let b = 0; b < nblk; b++) {
    const base = xofs[8 * b];
    i32[16 * b] = base;
    for (let j = 0; j < 8; j++) {
      mask[64 * b + 16 + 2 * j] = xofs[8 * b + j] - base;
      mask[64 * b + 16 + 2 * j + 1] = xofs[8 * b + j] - base + 1;
      w[32 * b + 16 + 2 * j] = alpha[2 * (8 * b + j)];
      w[32 * b + 16 + 2 * j + 1] = alpha[2 * (8 * b + j) + 1];
    }
  }
  return nblk;
}

export class WasmResizer {
  private readonly k: Exports;
  private lastLut: Uint8Array | null = null;
  private lastPlan: ResizePlan | null = null;
  private blocks = 0;

  constructor() {
    if (!KERNEL) throw new Error('WebAssembly SIMD is not available: use the JavaScript resize');
    this.k = instantiate<Exports>(KERNEL);
  }

  /**
   * A home for a capture of `count` pixels inside the kernel's memory (room made for `dw`
   * destination columns), so that `run` need not copy it in. Valid until the next call.
   */
  pixels(count: number, dw: number): Uint16Array {
    const l = layout(count, Math.min(count, 65536), dw);
    reserve(this.k.memory, l.end);
    return new Uint16Array(this.k.memory.buffer, l.DATA, count);
  }

  /** Writes 1 or 3 channels (sharing one table) of `plan.dstWidth × plan.dstHeight` into `out`. */
  run(data: Uint16Array, lut: Uint8Array, plan: ResizePlan, channels: Channel[], out: Float32Array): void {
    const { srcWidth: sw, srcHeight: sh, dstWidth: dw, dstHeight: dh } = plan;
    const n = channels.length;
    if (n !== 1 && n !== 3) throw new RangeError('1 or 3 channels');
    const l = layout(sw * sh, sw, dw);
    const mem = this.k.memory;
    // A capture decoded into `pixels()` is already in place (growing keeps it there).
    const inPlace = data.buffer === mem.buffer && data.byteOffset === l.DATA && data.length === sw * sh;
    reserve(mem, l.end);
    if (lut !== this.lastLut) {
      new Uint8Array(mem.buffer, l.LUT, 65536).set(lut);
      this.lastLut = lut;
    }
    if (plan !== this.lastPlan) {
      this.blocks = writeBlocks(plan, mem.buffer, l.BLK, l.XW);
      this.lastPlan = plan;
    }
    if (!inPlace) new Uint16Array(mem.buffer, l.DATA, sw * sh).set(data);
    const bytes = new Uint8Array(mem.buffer);
    const nblk = this.blocks;
    const xwTail = l.XW + nblk * 8 * 12;
    const tail = dw - nblk * 8;
    const [c0, c1, c2] = [channels[0], channels[n === 3 ? 1 : 0], channels[n === 3 ? 2 : 0]];
    const { OUT, chunkPlane } = l;
    verticalPass(plan, [l.ROW_A, l.ROW_B], (from, to) => bytes.copyWithin(to, from, from + dw * 4),
      (sy, into) => this.k.hrow(l.DATA + sy * sw * 2, sw, l.LUT, l.TMP, l.BLK, nblk, xwTail, tail, into),
      (dy, rowA, rowB, b0, b1) => {
        // Output rows go through a small buffer, copied out every CHUNK rows while still in
        // cache (one 24 MB copy at the end cost ~2.8 ms and 24 MB of memory).
        const o = OUT + (dy % CHUNK) * dw * 4;
        this.k.vemit(rowA, rowB, b0, b1, dw, n, o, o + chunkPlane, o + 2 * chunkPlane, c0.scale, c0.shift, c1.scale, c1.shift, c2.scale, c2.shift);
        if (dy % CHUNK === CHUNK - 1 || dy === dh - 1) {
          const first = dy - (dy % CHUNK);
          const count = (dy - first + 1) * dw;
          for (let c = 0; c < n; c++) out.set(new Float32Array(mem.buffer, OUT + c * chunkPlane, count), channels[c].offset + first * dw);
        }
      });
  }
}
