import type { Model } from '../infer/model.js';
import { scoreFile } from '../infer/score.js';
import type { PrepareStage } from '../prepare/stage.js';

/** How the int8 model's verdicts compare with the fp32 model's on captures it was not calibrated on. */
export interface AgreementReport {
  captures: number;
  /** Captures both models scored (the others failed to decode, and are listed). */
  scored: number;
  verdict_agreement: number;
  delta_p_abnormal: { median: number; p99: number; max: number };
  /** Captures that moved into or out of the review band. */
  review_band_changes: number;
  /** Captures whose verdict or reason differs: file, fp32 → int8. */
  changed: Array<{ file: string; fp32: string; int8: string; p_fp32: number; p_int8: number }>;
  unreadable: string[];
  /** The fp32 scores' spread: a check that cannot fail on a model that scores everything alike is worth nothing. */
  p_fp32_range: [number, number];
}

/** The acceptance rule of `model quantize` (issue 19): both must hold, or `--force`. */
export const MIN_AGREEMENT = 0.995;
export const MAX_DELTA = 0.02;

const quantile = (sorted: number[], q: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] : 0);

export async function compareModels(fp32: Model, int8: Model, files: string[], stage: PrepareStage): Promise<AgreementReport> {
  const deltas: number[] = [];
  const changed: AgreementReport['changed'] = [];
  const unreadable: string[] = [];
  let agree = 0;
  let band = 0;
  let lo = Infinity;
  let hi = -Infinity;
  for (const file of files) {
    const a = await scoreFile(file, fp32, stage);
    const b = await scoreFile(file, int8, stage);
    if (a.verdict === 'error' || b.verdict === 'error') {
      unreadable.push(`${file}: ${a.verdict === 'error' ? a.error.code : ''}${b.verdict === 'error' ? ` int8 ${b.error.code}` : ''}`);
      continue;
    }
    deltas.push(Math.abs(a.p_abnormal - b.p_abnormal));
    lo = Math.min(lo, a.p_abnormal);
    hi = Math.max(hi, a.p_abnormal);
    if (a.verdict === b.verdict) agree++;
    if ((a.reason === 'uncertain') !== (b.reason === 'uncertain')) band++;
    if (a.verdict !== b.verdict || a.reason !== b.reason) {
      changed.push({ file, fp32: `${a.verdict}/${a.reason}`, int8: `${b.verdict}/${b.reason}`, p_fp32: a.p_abnormal, p_int8: b.p_abnormal });
    }
  }
  const sorted = [...deltas].sort((x, y) => x - y);
  return {
    captures: files.length,
    scored: deltas.length,
    verdict_agreement: deltas.length ? agree / deltas.length : 0,
    delta_p_abnormal: { median: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted.at(-1) ?? 0 },
    review_band_changes: band,
    changed,
    unreadable,
    p_fp32_range: [deltas.length ? lo : 0, deltas.length ? hi : 0],
  };
}
