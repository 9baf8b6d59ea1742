import type { Db } from '../record/database.js';

/** Read-only audit queries (safe while the daemon writes: WAL readers never block it). */

export interface Filter {
  since?: string;
  until?: string;
  verdict?: 'pass' | 'flag' | 'error';
}

function where(f: Filter): { sql: string; params: unknown[] } {
  const clauses: string[] = [];
  const params: unknown[] = [];
  if (f.since) { clauses.push('scored_at >= ?'); params.push(f.since); }
  if (f.until) { clauses.push('scored_at < ?'); params.push(f.until); }
  if (f.verdict) { clauses.push('verdict = ?'); params.push(f.verdict); }
  return { sql: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', params };
}

export type InspectionRow = Record<string, string | number | null>;

export function listInspections(db: Db, f: Filter, limit: number): InspectionRow[] {
  const w = where(f);
  // newest first: what an engineer asks for at the line
  return db.prepare(`SELECT * FROM inspections ${w.sql} ORDER BY seq DESC LIMIT ?`).all(...w.params, limit) as InspectionRow[];
}

export function showInspection(db: Db, idOrSeq: string): InspectionRow | null {
  const row = /^\d+$/.test(idOrSeq)
    ? db.prepare('SELECT * FROM inspections WHERE seq = ?').get(Number(idOrSeq))
    : db.prepare('SELECT * FROM inspections WHERE id = ?').get(idOrSeq);
  return (row as InspectionRow | undefined) ?? null;
}

/**
 * Every row, oldest first; from schema 7 with what its verdict carried from the heat map
 * (`has_heat`, `where_x`, `where_y`, `strength`), so that `collect backfill --jsonl` rebuilds the
 * verdict exactly as it was published.
 */
export function* exportInspections(db: Db, f: Filter): Generator<InspectionRow> {
  const w = where(f);
  const heat = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'heatmaps'").get() !== undefined;
  const sql = heat
    ? `SELECT i.*, h.inspection_id IS NOT NULL AS has_heat, h.where_x, h.where_y, h.strength FROM inspections i LEFT JOIN heatmaps h ON h.inspection_id = i.id ${w.sql} ORDER BY i.seq`
    : `SELECT * FROM inspections ${w.sql} ORDER BY seq`;
  yield* db.prepare(sql).iterate(...w.params) as Iterable<InspectionRow>;
}

export type GroupBy = 'hour' | 'day' | 'model';

const GROUP_EXPR: Record<GroupBy | 'all', string> = {
  all: `'all'`,
  hour: `substr(scored_at, 1, 13) || ':00Z'`,
  day: `substr(scored_at, 1, 10)`,
  model: `coalesce(model_name, '?') || ' v' || coalesce(model_version, '?')`,
};

export interface SummaryRow {
  group: string;
  total: number;
  pass: number;
  flag: number;
  error: number;
  flag_rate: number | null;
  latency_p50_ms: number | null;
  latency_p95_ms: number | null;
}

export function summary(db: Db, f: Filter, by: GroupBy | 'all' = 'all'): SummaryRow[] {
  const w = where(f);
  const g = GROUP_EXPR[by];
  const groups = db.prepare(`SELECT ${g} AS grp, count(*) AS total,
      sum(verdict = 'pass') AS pass, sum(verdict = 'flag') AS flag, sum(verdict = 'error') AS error,
      sum(total_ms IS NOT NULL) AS timed
    FROM inspections ${w.sql} GROUP BY grp ORDER BY grp`).all(...w.params) as Array<{ grp: string; total: number; pass: number; flag: number; error: number; timed: number }>;
  const and = w.sql ? `${w.sql} AND` : 'WHERE';
  const nth = db.prepare(`SELECT total_ms FROM inspections ${and} ${g} = ? AND total_ms IS NOT NULL ORDER BY total_ms LIMIT 1 OFFSET ?`);
  const percentile = (grp: string, timed: number, q: number): number | null => {
    if (timed === 0) return null;
    const k = Math.min(timed - 1, Math.max(0, Math.ceil(q * timed) - 1)); // nearest-rank
    return (nth.get(...w.params, grp, k) as { total_ms: number }).total_ms;
  };
  return groups.map((r) => ({
    group: r.grp,
    total: r.total,
    pass: r.pass,
    flag: r.flag,
    error: r.error,
    flag_rate: r.pass + r.flag > 0 ? r.flag / (r.pass + r.flag) : null,
    latency_p50_ms: percentile(r.grp, r.timed, 0.5),
    latency_p95_ms: percentile(r.grp, r.timed, 0.95),
  }));
}
