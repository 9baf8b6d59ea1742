import { XrayError } from '../errors.js';
import type { Manifest } from '../model/manifest.js';
import type { HeatMap, ModelRef, PreparedOk, ScoredOk } from '../pipeline/messages.js';
import { hottest, quantiseHeatMap } from './heatmap.js';
import { abnormalProbability, decide } from './verdict.js';

const round = (ms: number): number => Math.round(ms * 100) / 100;

/**
 * The decision for one capture: the model's output → p_abnormal → pass / flag by the bundle's
 * threshold and review band. Throws INFER_NON_FINITE for an output that is not a number.
 */
export function decideCapture(prepared: PreparedOk, run: { output: Float32Array; heatmap: HeatMap | null }, manifest: Manifest, model: ModelRef, timings: { inferMs: number; totalMs: number }): ScoredOk {
  const output = run.output;
  const p = abnormalProbability(output, manifest.output.kind, manifest.output.abnormal_index);
  if (!Number.isFinite(p)) throw new XrayError('INFER_NON_FINITE', `model output is not finite: [${Array.from(output).join(', ')}]`);
  const policy = { threshold: manifest.decision.threshold, reviewBand: manifest.decision.review_band };
  return {
    file: prepared.file,
    ...decide(p, policy),
    p_abnormal: p,
    threshold: policy.threshold,
    model,
    width: prepared.width,
    height: prepared.height,
    ...(prepared.localBounds ? { local_bounds: prepared.localBounds } : {}),
    ...(run.heatmap ? { heatmap: quantiseHeatMap(run.heatmap), where: hottest(run.heatmap, prepared.width, prepared.height) } : {}),
    timings_ms: {
      decode: round(prepared.decodeMs), preprocess: round(prepared.preprocessMs), infer: round(timings.inferMs), total: round(timings.totalMs),
    },
  };
}
