/** Threshold → verdict, a pure function (the line acts on its result). */

import type { Reason } from '../pipeline/messages.js';

export type VerdictKind = 'pass' | 'flag' | 'error';

export interface DecisionPolicy {
  threshold: number;
  /** [lo, hi): scores inside are flagged as `uncertain` for a human to decide. */
  reviewBand: [number, number] | null;
}

export function decide(pAbnormal: number, policy: DecisionPolicy): { verdict: 'pass' | 'flag'; reason: Reason } {
  if (!Number.isFinite(pAbnormal)) throw new RangeError(`p_abnormal is ${pAbnormal}`);
  const band = policy.reviewBand;
  if (band && pAbnormal >= band[0] && pAbnormal < band[1]) return { verdict: 'flag', reason: 'uncertain' };
  return pAbnormal >= policy.threshold ? { verdict: 'flag', reason: 'anomaly' } : { verdict: 'pass', reason: 'normal' };
}

/** Probability of the abnormal class from the model output (softmax applied to logits). */
export function abnormalProbability(output: Float32Array, kind: 'softmax' | 'logits', abnormalIndex: number): number {
  if (abnormalIndex >= output.length) throw new RangeError(`abnormal_index ${abnormalIndex} outside ${output.length} outputs`);
  for (const v of output) if (!Number.isFinite(v)) return Number.NaN;
  if (kind === 'softmax') return output[abnormalIndex];
  let max = -Infinity;
  for (const v of output) max = Math.max(max, v);
  let sum = 0;
  for (const v of output) sum += Math.exp(v - max);
  return Math.exp(output[abnormalIndex] - max) / sum;
}
