import * as ort from 'onnxruntime-node';
import { encodeModel, decodeModel } from './graph.js';

/**
 * Activation ranges from the plant's own captures, run through the fp32 model with every tensor
 * to be quantised as an extra output. Each capture's outputs are reduced (min/max, then a
 * histogram) and dropped before the next: memory holds one capture's activations, never all.
 * `minmax`: the extremes seen. `percentile:P`: the P-th percentile of the values (both tails for
 * signed tensors). `entropy`: the clipping threshold whose 8-bit histogram is closest in KL
 * divergence to the full one (TensorRT's calibration).
 */

export type Method = { kind: 'minmax' } | { kind: 'percentile'; p: number } | { kind: 'entropy' };

const BINS = 2048;

export function parseMethod(text: string): Method | null {
  if (text === 'minmax' || text === 'entropy') return { kind: text };
  const m = /^percentile:(\d+(?:\.\d+)?)$/.exec(text);
  const p = m ? Number(m[1]) : NaN;
  return p > 50 && p <= 100 ? { kind: 'percentile', p } : null;
}

/** A session that also outputs `tensors`. */
async function probe(modelBytes: Uint8Array, tensors: string[]): Promise<ort.InferenceSession> {
  const model = decodeModel(modelBytes, 'calibration model');
  const have = new Set((model.graph!.output ?? []).map((o) => o.name));
  for (const t of tensors) if (!have.has(t)) model.graph!.output!.push({ name: t });
  return ort.InferenceSession.create(encodeModel(model), { graphOptimizationLevel: 'basic' });
}

/** Each tensor's [lo, hi] over the calibration captures; `count` is how many were run. */
export async function calibrate(modelBytes: Uint8Array, tensors: string[], input: () => AsyncIterable<Float32Array>, inputName: string, dims: number[], method: Method): Promise<{ ranges: Map<string, [number, number]>; count: number }> {
  const session = await probe(modelBytes, tensors);
  const run = async (each: (name: string, data: Float32Array) => void): Promise<number> => {
    let count = 0;
    for await (const tensor of input()) {
      const out = await session.run({ [inputName]: new ort.Tensor('float32', tensor, dims) }, tensors);
      for (const t of tensors) each(t, out[t].data as Float32Array);
      for (const t of Object.values(out)) t.dispose();
      count++;
    }
    return count;
  };
  try {
    const extremes = new Map(tensors.map((t) => [t, [Infinity, -Infinity] as [number, number]]));
    const count = await run((name, data) => {
      const r = extremes.get(name)!;
      let lo = r[0];
      let hi = r[1];
      for (let i = 0; i < data.length; i++) {
        const v = data[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      r[0] = lo;
      r[1] = hi;
    });
    if (method.kind === 'minmax' || count === 0) return { ranges: extremes, count };
    // second pass: histograms of |x| over [0, max |x|], one per tensor
    const hist = new Map(tensors.map((t) => [t, { pos: new Float64Array(BINS), neg: new Float64Array(BINS) }]));
    await run((name, data) => {
      const [lo, hi] = extremes.get(name)!;
      const top = Math.max(-lo, hi) || 1;
      const h = hist.get(name)!;
      const k = BINS / top;
      for (let i = 0; i < data.length; i++) {
        const v = data[i];
        if (v >= 0) h.pos[Math.min(BINS - 1, Math.floor(v * k))]++;
        else h.neg[Math.min(BINS - 1, Math.floor(-v * k))]++;
      }
    });
    const ranges = new Map<string, [number, number]>();
    for (const t of tensors) {
      const [lo, hi] = extremes.get(t)!;
      const top = Math.max(-lo, hi) || 1;
      const h = hist.get(t)!;
      const edge = (bins: Float64Array): number => (method.kind === 'percentile' ? percentileEdge(bins, method.p) : entropyEdge(bins)) * (top / BINS);
      ranges.set(t, [lo < 0 ? -Math.min(-lo, edge(h.neg)) : lo, hi > 0 ? Math.min(hi, edge(h.pos)) : hi]);
    }
    return { ranges, count };
  } finally {
    await session.release();
  }
}

/** The upper edge of the bin where the cumulative count reaches p % of the whole. */
export function percentileEdge(bins: Float64Array, p: number): number {
  const total = bins.reduce((a, b) => a + b, 0);
  if (total === 0) return 0;
  let sum = 0;
  for (let i = 0; i < bins.length; i++) {
    sum += bins[i];
    if (sum >= (total * p) / 100) return i + 1;
  }
  return bins.length;
}

/**
 * The clipping edge (in bins) that minimises KL(P ‖ Q), P the histogram clipped there (the
 * outliers folded into its last bin), Q the same squeezed into 128 levels and expanded back.
 */
export function entropyEdge(bins: Float64Array, levels = 128): number {
  const total = bins.reduce((a, b) => a + b, 0);
  if (total === 0) return 0;
  let best = bins.length;
  let bestKl = Infinity;
  for (let edge = levels; edge <= bins.length; edge += 16) {
    const p = Array.from(bins.subarray(0, edge));
    for (let i = edge; i < bins.length; i++) p[edge - 1] += bins[i];
    const q = new Array<number>(edge).fill(0);
    const per = edge / levels;
    for (let l = 0; l < levels; l++) {
      const from = Math.floor(l * per);
      const to = Math.floor((l + 1) * per);
      let sum = 0;
      let nonzero = 0;
      for (let i = from; i < to; i++) {
        sum += p[i];
        if (p[i] > 0) nonzero++;
      }
      for (let i = from; i < to; i++) if (p[i] > 0) q[i] = sum / nonzero;
    }
    let kl = 0;
    const ps = p.reduce((a, b) => a + b, 0);
    const qs = q.reduce((a, b) => a + b, 0);
    for (let i = 0; i < edge; i++) if (p[i] > 0) kl += (p[i] / ps) * Math.log((p[i] / ps) / Math.max(q[i] / qs, 1e-12));
    if (kl < bestKl) {
      bestKl = kl;
      best = edge;
    }
  }
  return best;
}
