import { instantiate, reserve } from '../wasm.js';
import { DECODE_KERNEL } from './wasm-module.js';

/**
 * The TIFF horizontal predictor undone in the WebAssembly kernel (decode/kernel.wat `unpredict16`, SIMD
 * prefix sums): the same result as `undoHorizontalPredictor` in tiff.ts, ~4× faster
 * (docs/performance.md). Blocks are copied through the instance's memory (a strip is ~36 KB, in
 * cache). One instance per thread (DecodeKernels).
 */
interface Exports {
  memory: WebAssembly.Memory;
  unpredict16(p: number, width: number, rows: number): void;
}

export class WasmPredictor {
  private readonly k: Exports;

  constructor() {
    if (!DECODE_KERNEL) throw new Error('WebAssembly SIMD is not available: use the JavaScript decoder');
    this.k = instantiate<Exports>(DECODE_KERNEL);
  }

  /** Undoes predictor 2 on `rows` rows of `width` samples at the start of `block`, in place. */
  undo(block: Uint16Array, width: number, rows: number): void {
    const n = width * rows;
    const mem = this.k.memory;
    reserve(mem, n * 2 + 16);
    const inside = new Uint16Array(mem.buffer, 0, n);
    inside.set(block.subarray(0, n));
    this.k.unpredict16(0, width, rows);
    block.set(inside);
  }
}
