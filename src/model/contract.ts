import type { Bounds, Conversion } from '../convert/conversion.js';
import type { Manifest } from './manifest.js';

/** What a model expects of its input: the manifest's `input` and `preprocess` sections. */
export interface TensorContract {
  height: number;
  width: number;
  conversion: Conversion;
  bounds: Bounds | null;
  mean: [number, number, number];
  std: [number, number, number];
}

export function contractFor(m: Manifest): TensorContract {
  return {
    height: m.input.height,
    width: m.input.width,
    conversion: m.preprocess.conversion,
    bounds: m.preprocess.bounds,
    mean: m.preprocess.mean,
    std: m.preprocess.std,
  };
}
