import type { Gray16Image } from '../decode/tiff.js';
import { Converter, type Bounds, type Conversion } from '../convert/conversion.js';
import { planResize, resizeLinear, type ResizePlan } from './resize.js';

/** What the model expects of its input: the manifest's `input` and `preprocess` sections. */
export interface TensorContract {
  height: number;
  width: number;
  conversion: Conversion;
  bounds: Bounds | null;
  mean: [number, number, number];
  std: [number, number, number];
}

export interface Preprocessed {
  /** NCHW float32 [1, 3, H, W]. */
  tensor: Float32Array;
  /** The three resized 8-bit planes the tensor was normalised from (shared when replicated). */
  planes: [Uint8Array, Uint8Array, Uint8Array];
  /** Per-image bounds for `local` / `mixed`, else null. */
  localBounds: Bounds | null;
}

/**
 * convert → resize → normalise, for one model. Tables that depend only on the model (the
 * global lookup table, the per-channel normalisation tables) are built once; the resize plan is
 * cached per source size.
 */
export class Preprocessor {
  readonly contract: TensorContract;
  private readonly converter: Converter;
  private readonly normTables: Float32Array[];
  private plan: ResizePlan | null = null;

  constructor(contract: TensorContract) {
    this.contract = contract;
    this.converter = new Converter(contract.conversion, contract.bounds);
    this.normTables = [0, 1, 2].map((c) => {
      const table = new Float32Array(256);
      for (let v = 0; v < 256; v++) table[v] = (v / 255 - contract.mean[c]) / contract.std[c];
      return table;
    });
  }

  run(image: Gray16Image, tensor?: Float32Array): Preprocessed {
    const { height: H, width: W } = this.contract;
    const size = H * W;
    const out = tensor ?? new Float32Array(3 * size);
    if (out.length !== 3 * size) throw new RangeError(`tensor has ${out.length} elements, expected ${3 * size}`);
    const { planes, bounds } = this.converter.convert(image);
    const plan = this.planFor(image.width, image.height);
    const resized: Uint8Array[] = [];
    for (let c = 0; c < 3; c++) {
      const previous = planes.indexOf(planes[c]);
      resized[c] = previous < c ? resized[previous] : resizeLinear(planes[c], plan);
      const table = this.normTables[c];
      const plane = resized[c];
      const base = c * size;
      for (let i = 0; i < size; i++) out[base + i] = table[plane[i]];
    }
    return { tensor: out, planes: resized as [Uint8Array, Uint8Array, Uint8Array], localBounds: bounds };
  }

  private planFor(width: number, height: number): ResizePlan {
    const { height: H, width: W } = this.contract;
    if (!this.plan || this.plan.srcWidth !== width || this.plan.srcHeight !== height) {
      this.plan = planResize(width, height, W, H);
    }
    return this.plan;
  }
}
