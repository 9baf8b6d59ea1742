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
}

export function driftReport(db: Db, o: { by: 'day' | 'bundle'; since?: string; until?: string }): DriftRow[] {
  const group = o.by === 'day' ? 'substr(scored_at, 1, 10)' : "coalesce(bundle, '(none)')";
  const clauses = ['p50 IS NOT NULL'];
  const params: unknown[] = [];
  if (o.since) { clauses.push('scored_at >= ?'); params.push(o.since); }
  if (o.until) { clauses.push('scored_at < ?'); params.push(o.until); }
  return db.prepare(`SELECT ${group} AS "group", count(*) AS n, avg(clip_low) AS mean_clip_low, avg(clip_high) AS mean_clip_high,
      avg(p50) AS mean_p50, min(p0_01) AS min_p0_01, max(p99_99) AS max_p99_99,
      group_concat(DISTINCT CASE WHEN bounds_min IS NOT NULL THEN bounds_min || '–' || bounds_max END) AS bounds,
      avg(verdict = 'flag') AS flag_rate
    FROM inspections WHERE ${clauses.join(' AND ')} GROUP BY 1 ORDER BY 1`).all(...params) as DriftRow[];
}
