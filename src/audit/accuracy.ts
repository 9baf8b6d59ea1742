import type { Db } from '../record/database.js';

/**
 * The paper's measure on the station's own audit data (docs/quality.md): per group the confusion
 * counts of the labelled verdicts and the balanced accuracy — the mean recall over the classes
 * present in that group — and an Overall row from the pooled counts (Table 1's rules). A `flag`
 * is "abnormal predicted"; an `uncertain` flag too, unless `uncertain: 'exclude'` leaves those
 * out; `error` rows are no prediction and are counted apart.
 */

export type AccuracyGroup = 'bundle' | 'model' | 'day' | 'week' | 'month';

export interface AccuracyOptions {
  by: AccuracyGroup;
  since?: string;
  until?: string;
  /** `NAME` or `NAME:VERSION`. */
  model?: string;
  uncertain: 'flag' | 'exclude';
}

export interface AccuracyRow {
  group: string;
  n: number;
  errors: number;
  uncertain_excluded: number;
  labelled: number;
  tp: number;
  fp: number;
  tn: number;
  fn: number;
  tpr: number | null;
  tnr: number | null;
  balanced_accuracy: number | null;
  /** Labelled share of the verdicts (errors not counted). */
  label_coverage: number | null;
  /** Flags (uncertain included) without a label: what waits for a human. */
  review_backlog: number;
}

const GROUP_SQL: Record<AccuracyGroup, string> = {
  bundle: "coalesce(i.bundle, '(none)')",
  model: "coalesce(i.model_name || ' v' || i.model_version, '(none)')",
  day: 'substr(i.scored_at, 1, 10)',
  week: "strftime('%Y-W%W', i.scored_at)",
  month: 'substr(i.scored_at, 1, 7)',
};

/**
 * The latest label of each labelled inspection (SQLite takes a bare column from the row that
 * holds the max). Not `WHERE id IN (SELECT max(id) …)`: SQLite probed that list once per
 * inspection — minutes at 1,000,000 inspections and 100,000 labels.
 */
export const CURRENT_LABELS = 'SELECT inspection_id, label, max(id) AS latest FROM labels GROUP BY inspection_id';

export function accuracy(db: Db, o: AccuracyOptions): AccuracyRow[] {
  const clauses: string[] = [];
  const params: unknown[] = [];
  if (o.since) { clauses.push('i.scored_at >= ?'); params.push(o.since); }
  if (o.until) { clauses.push('i.scored_at < ?'); params.push(o.until); }
  if (o.model) {
    const [name, version] = o.model.split(':');
    clauses.push('i.model_name = ?');
    params.push(name);
    if (version !== undefined) { clauses.push('i.model_version = ?'); params.push(Number(version)); }
  }
  const excluded = o.uncertain === 'exclude' ? "i.reason = 'uncertain'" : '0';
  const scored = `i.verdict != 'error' AND NOT (${excluded})`;
  const rows = db.prepare(`
    SELECT ${GROUP_SQL[o.by]} AS grp, count(*) AS n,
      sum(i.verdict = 'error') AS errors,
      sum(i.verdict != 'error' AND (${excluded})) AS uncertain_excluded,
      sum(${scored} AND c.label IS NOT NULL) AS labelled,
      sum(${scored} AND i.verdict = 'flag' AND c.label = 'abnormal') AS tp,
      sum(${scored} AND i.verdict = 'flag' AND c.label = 'normal') AS fp,
      sum(${scored} AND i.verdict = 'pass' AND c.label = 'normal') AS tn,
      sum(${scored} AND i.verdict = 'pass' AND c.label = 'abnormal') AS fn,
      sum(i.verdict != 'error') AS verdicts,
      sum(i.verdict != 'error' AND c.label IS NOT NULL) AS any_labelled,
      sum(i.verdict = 'flag' AND c.label IS NULL) AS review_backlog
    FROM inspections i LEFT JOIN (${CURRENT_LABELS}) c ON c.inspection_id = i.id
    ${clauses.length ? `WHERE ${clauses.join(' AND ')}` : ''}
    GROUP BY grp ORDER BY grp`).all(...params) as Array<Record<string, number | string>>;
  const out = rows.map((r) => finish(String(r.grp), r));
  const pooled: Record<string, number> = {};
  for (const r of rows) for (const [k, v] of Object.entries(r)) if (typeof v === 'number') pooled[k] = (pooled[k] ?? 0) + v;
  return [...out, finish('Overall', pooled)];
}

function finish(group: string, r: Record<string, number | string>): AccuracyRow {
  const num = (k: string): number => Number(r[k] ?? 0);
  const [tp, fp, tn, fn] = [num('tp'), num('fp'), num('tn'), num('fn')];
  const tpr = tp + fn > 0 ? tp / (tp + fn) : null;
  const tnr = tn + fp > 0 ? tn / (tn + fp) : null;
  const present = [tpr, tnr].filter((x): x is number => x !== null);
  return {
    group, n: num('n'), errors: num('errors'), uncertain_excluded: num('uncertain_excluded'), labelled: num('labelled'), tp, fp, tn, fn, tpr, tnr,
    balanced_accuracy: present.length ? (100 * present.reduce((a, b) => a + b, 0)) / present.length : null,
    label_coverage: num('verdicts') > 0 ? num('any_labelled') / num('verdicts') : null,
    review_backlog: num('review_backlog'),
  };
}

export interface ReviewRow { seq: number; id: string; scored_at: string; file_path: string; bundle: string | null; part_id: string | null; verdict: string; reason: string; p_abnormal: number | null; label: string | null }

/** What waits for a human, oldest first: flags and uncertains (or `verdict`), without a label when `unlabelled`. */
export function reviewList(db: Db, o: { unlabelled: boolean; verdict?: 'flag' | 'uncertain' | 'pass'; limit: number }): ReviewRow[] {
  const filter = o.verdict === 'uncertain' ? "i.reason = 'uncertain'" : o.verdict === 'pass' ? "i.verdict = 'pass'" : o.verdict === 'flag' ? "i.verdict = 'flag' AND i.reason != 'uncertain'" : "i.verdict = 'flag'";
  return db.prepare(`SELECT i.seq, i.id, i.scored_at, i.file_path, i.bundle, i.part_id, i.verdict, i.reason, i.p_abnormal, c.label
    FROM inspections i LEFT JOIN (${CURRENT_LABELS}) c ON c.inspection_id = i.id
    WHERE ${filter} ${o.unlabelled ? 'AND c.label IS NULL' : ''} ORDER BY i.seq LIMIT ?`).all(o.limit) as ReviewRow[];
}
