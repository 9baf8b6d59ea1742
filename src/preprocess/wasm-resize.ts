import { KERNEL_WASM_BASE64 } from './kernel-wasm.js';
import { verticalPass, type ResizePlan } from './resize.js';

/**
 * The fused lookup table → INTER_LINEAR resize → normalisation of `resizeLutInto`, run by the
 * WebAssembly kernel (kernel.wat: scalar table and horizontal pass, SIMD vertical pass and
 * normalisation). Bit-identical to the JavaScript path (test/resize.test.ts) and ~3× faster
 * (docs/performance.md). One instance per thread; its memory holds the table, the capture, the
 * 8-bit plane, two horizontal rows and the output planes, grown as needed and reused.
 */

interface Exports {
  memory: WebAssembly.Memory;
  lut(data: number, lut: number, dst: number, n: number): void;
  hpass(row: number, xw: number, dw: number, out: number): void;
  vemit(ra: number, rb: number, b0: number, b1: number, dw: number, channels: number, o0: number, o1: number, o2: number,
    s0: number, t0: number, s1: number, t1: number, s2: number, t2: number): void;
}

let compiled: WebAssembly.Module | null = null;

export function kernelModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(Buffer.from(KERNEL_WASM_BASE64, 'base64'));
  return compiled;
}

/** True where the runtime has WebAssembly SIMD (Node ≥ 16.4); else the JavaScript path is used. */
export function wasmKernelAvailable(): boolean {
  try {
    kernelModule();
    return true;
  } catch {
    return false;
  }
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

export class WasmResizer {
  private readonly k: Exports;
  private lastLut: Uint8Array | null = null;
  private lastPlan: ResizePlan | null = null;

  constructor() {
    this.k = new WebAssembly.Instance(kernelModule(), {}).exports as unknown as Exports;
  }

  /** Writes 1 or 3 channels (sharing one table) of `plan.dstWidth × plan.dstHeight` into `out`. */
  run(data: Uint16Array, lut: Uint8Array, plan: ResizePlan, channels: Channel[], out: Float32Array): void {
    const { srcWidth: sw, srcHeight: sh, dstWidth: dw, dstHeight: dh } = plan;
    const n = channels.length;
    if (n !== 1 && n !== 3) throw new RangeError('1 or 3 channels');
    const plane = dw * dh;
    // layout: table | per-column offsets+weights | rows A, B | 8-bit source plane | capture | output
    const LUT = 0;
    const XW = LUT + 65536;
    const ROW_A = align(XW + dw * 12);
    const ROW_B = align(ROW_A + dw * 4 + 16);
    const ROW8 = align(ROW_B + dw * 4 + 16);
    const DATA = align(ROW8 + sw * sh + 16);
    // Output rows go through a small buffer, copied out every CHUNK rows while still in cache
    // (one 24 MB copy at the end cost ~2.8 ms and 24 MB of memory).
    const OUT = align(DATA + sw * sh * 2);
    const chunkPlane = CHUNK * dw * 4;
    const end = OUT + n * chunkPlane + 16;
    const mem = this.k.memory;
    if (end > mem.buffer.byteLength) {
      mem.grow(Math.ceil((end - mem.buffer.byteLength) / 65536));
      this.lastLut = null;
      this.lastPlan = null;
    }
    const bytes = new Uint8Array(mem.buffer);
    if (lut !== this.lastLut) {
      bytes.set(lut, LUT);
      this.lastLut = lut;
    }
    if (plan !== this.lastPlan) {
      const xw = new Int32Array(mem.buffer, XW, dw * 3);
      for (let dx = 0; dx < dw; dx++) {
        xw[3 * dx] = plan.xofs[dx];
        xw[3 * dx + 1] = plan.alpha[2 * dx];
        xw[3 * dx + 2] = plan.alpha[2 * dx + 1];
      }
      this.lastPlan = plan;
    }
    new Uint16Array(mem.buffer, DATA, sw * sh).set(data);
    this.k.lut(DATA, LUT, ROW8, sw * sh);

    const [c0, c1, c2] = [channels[0], channels[n === 3 ? 1 : 0], channels[n === 3 ? 2 : 0]];
    verticalPass(plan, [ROW_A, ROW_B], (from, to) => bytes.copyWithin(to, from, from + dw * 4),
      (sy, into) => this.k.hpass(ROW8 + sy * sw, XW, dw, into),
      (dy, rowA, rowB, b0, b1) => {
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
