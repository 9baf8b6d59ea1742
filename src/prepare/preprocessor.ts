import type { Gray16Image } from '../decode/tiff.js';
import { Converter, type Bounds } from '../convert/conversion.js';
import type { TensorContract } from '../model/contract.js';
import { planResize, resizeLutInto, type ResizePlan } from './resize.js';
import { wasmKernelAvailable, WasmResizer } from './wasm-resize.js';

export interface Preprocessed {
  /** NCHW float32 [1, 3, H, W]. */
  tensor: Float32Array;
  /** The three resized 8-bit planes (shared when replicated); null unless asked for. */
  planes: [Uint8Array, Uint8Array, Uint8Array] | null;
  /** Per-image bounds for `local` / `mixed`, else null. */
  localBounds: Bounds | null;
}

/**
 * Normalisation of an 8-bit value v for channel c, in float32 as the reference pipeline does it
 * (NumPy, float32 mean/std): f32(f32(v · scale_c) + shift_c), scale_c = 1 / (255 · std_c),
 * shift_c = −mean_c / std_c, each rounded to float32. Equal to (v/255 − mean)/std within an ulp.
 */
export function normalisation(mean: number, std: number): { scale: number; shift: number } {
  const f = Math.fround;
  const s = f(std);
  return { scale: f(1 / f(255 * s)), shift: f(-f(mean) / s) };
}

/**
 * convert → resize → normalise, for one model. Tables that depend only on the model (the
 * global lookup table, the per-channel normalisation) are built once; the resize plan is cached
 * per source size. The WebAssembly kernel does the work where it can (`WasmResizer`), the
 * JavaScript path otherwise (identity and exact-2× sizes, the 8-bit planes for `--png`).
 */
export class Preprocessor {
  readonly contract: TensorContract;
  private readonly converter: Converter;
  private readonly norm: Array<{ scale: number; shift: number }>;
  private readonly normTables: Float32Array[];
  private plan: ResizePlan | null = null;
  private wasm: WasmResizer | null;

  /** `kernel`: a WebAssembly kernel to share (one per thread), null for the JavaScript path. */
  constructor(contract: TensorContract, kernel?: WasmResizer | null) {
    this.contract = contract;
    this.converter = new Converter(contract.conversion, contract.bounds);
    this.norm = [0, 1, 2].map((c) => normalisation(contract.mean[c], contract.std[c]));
    this.normTables = this.norm.map(({ scale, shift }) => {
      const table = new Float32Array(256);
      for (let v = 0; v < 256; v++) table[v] = Math.fround(Math.fround(v * scale) + shift);
      return table;
    });
    this.wasm = kernel === undefined ? (wasmKernelAvailable() ? new WasmResizer() : null) : kernel;
  }

  /**
   * Converts, resizes and normalises into `tensor` (allocated when not given). The 8-bit planes
   * are only materialised when `withPlanes` is set (`preprocess --png`).
   */
  run(image: Gray16Image, tensor?: Float32Array, withPlanes = false): Preprocessed {
    const { height: H, width: W } = this.contract;
    const size = H * W;
    const out = tensor ?? new Float32Array(3 * size);
    if (out.length !== 3 * size) throw new RangeError(`tensor has ${out.length} elements, expected ${3 * size}`);
    const { luts, bounds } = this.converter.tables(image);
    const plan = this.planFor(image.width, image.height);
    const planes: Uint8Array[] = [];
    const wasm = this.wasm && !withPlanes && !plan.area2x && !(plan.srcWidth === W && plan.srcHeight === H) ? this.wasm : null;
    if (wasm) {
      const channel = (c: number): { scale: number; shift: number; offset: number } => ({ ...this.norm[c], offset: c * size });
      if (luts[0] === luts[1] && luts[1] === luts[2]) wasm.run(image.data, luts[0], plan, [0, 1, 2].map(channel), out);
      else for (let c = 0; c < 3; c++) wasm.run(image.data, luts[c], plan, [channel(c)], out);
      return { tensor: out, planes: null, localBounds: bounds };
    }
    if (luts[0] === luts[1] && luts[1] === luts[2]) {
      const plane = withPlanes ? new Uint8Array(size) : undefined;
      resizeLutInto(image.data, luts[0], plan, [0, 1, 2].map((c) => ({ table: this.normTables[c], offset: c * size })), out, plane);
      if (plane) planes.push(plane, plane, plane);
    } else {
      for (let c = 0; c < 3; c++) {
        const plane = withPlanes ? new Uint8Array(size) : undefined;
        resizeLutInto(image.data, luts[c], plan, [{ table: this.normTables[c], offset: c * size }], out, plane);
        if (plane) planes.push(plane);
      }
    }
    return { tensor: out, planes: withPlanes ? (planes as [Uint8Array, Uint8Array, Uint8Array]) : null, localBounds: bounds };
  }

  /**
   * Where a decoder may put a capture of `count` pixels so that `run` reads it without a copy:
   * the WebAssembly kernel's memory, valid until the next capture; null on the JavaScript path.
   */
  pixelBuffer(count: number): Uint16Array | null {
    return this.wasm ? this.wasm.pixels(count, this.contract.width) : null;
  }

  private planFor(width: number, height: number): ResizePlan {
    const { height: H, width: W } = this.contract;
    if (!this.plan || this.plan.srcWidth !== width || this.plan.srcHeight !== height) {
      this.plan = planResize(width, height, W, H);
    }
    return this.plan;
  }
}
