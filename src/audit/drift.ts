import type { Db } from '../record/database.js';

/** What the conversion saw, per group, beside the model's bounds (`xray-qc audit drift`, docs/quality.md). */
export interface DriftRow {
  group: string;
  n: number;
  mean_clip_low: number | null;
  mean_clip_high: number | null;
  mean_p50: number | null;
  min_p0_01: number | null;
  max_p99_99: number | null;
  bounds: string | null;
  flag_rate: number | null;
  /** Population stability index of p_abnormal against the bundle's training predictions (null without them). */
  psi?: number | null;
  /** What the index says: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 significant shift. */
  psi_rule?: 'stable' | 'moderate shift' | 'significant shift' | null;
}

const BINS = 10;

/** The share of scores in each of ten equal bins over [0, 1]. */
export function scoreShares(scores: number[]): number[] {
  const counts = new Array<number>(BINS).fill(0);
  for (const p of scores) counts[Math.min(BINS - 1, Math.max(0, Math.floor(p * BINS)))]++;
  return counts.map((c) => c / Math.max(1, scores.length));
}

/** PSI = Σ (a − e) · ln(a / e) over the bins, empty bins counted as 1e-4. */
export function psi(expected: number[], actual: number[]): number {
  let sum = 0;
  for (let i = 0; i < BINS; i++) {
    const e = Math.max(expected[i], 1e-4);
    const a = Math.max(actual[i], 1e-4);
    sum += (a - e) * Math.log(a / e);
  }
  return sum;
}

export function psiRule(value: number): 'stable' | 'moderate shift' | 'significant shift' {
  return value < 0.1 ? 'stable' : value <= 0.25 ? 'moderate shift' : 'significant shift';
}

/** `reference`: the training predictions' p_abnormal (a bundle's oof- or train-predictions.csv), for the PSI column. */
export function driftReport(db: Db, o: { by: 'day' | 'bundle'; since?: string; until?: string; reference?: number[] }): DriftRow[] {
  const group = o.by === 'day' ? 'substr(scored_at, 1, 10)' : "coalesce(bundle, '(none)')";
  const clauses = ['p50 IS NOT NULL'];
  const params: unknown[] = [];
  if (o.since) { clauses.push('scored_at >= ?'); params.push(o.since); }
  if (o.until) { clauses.push('scored_at < ?'); params.push(o.until); }
  const rows = db.prepare(`SELECT ${group} AS "group", count(*) AS n, avg(clip_low) AS mean_clip_low, avg(clip_high) AS mean_clip_high,
      avg(p50) AS mean_p50, min(p0_01) AS min_p0_01, max(p99_99) AS max_p99_99,
      group_concat(DISTINCT CASE WHEN bounds_min IS NOT NULL THEN bounds_min || '–' || bounds_max END) AS bounds,
      avg(verdict = 'flag') AS flag_rate
    FROM inspections WHERE ${clauses.join(' AND ')} GROUP BY 1 ORDER BY 1`).all(...params) as DriftRow[];
  if (!o.reference?.length) return rows;
  const expected = scoreShares(o.reference);
  const bins = db.prepare(`SELECT ${group} AS "group", min(${BINS - 1}, max(0, CAST(p_abnormal * ${BINS} AS INTEGER))) AS bin, count(*) AS n
    FROM inspections WHERE ${clauses.join(' AND ')} AND p_abnormal IS NOT NULL GROUP BY 1, 2`).all(...params) as Array<{ group: string; bin: number; n: number }>;
  return rows.map((r) => {
    const counts = new Array<number>(BINS).fill(0);
    for (const b of bins) if (b.group === r.group) counts[b.bin] += b.n;
    const total = counts.reduce((a, b) => a + b, 0);
    if (!total) return { ...r, psi: null, psi_rule: null };
    const value = psi(expected, counts.map((c) => c / total));
    return { ...r, psi: value, psi_rule: psiRule(value) };
  });
}
