import type { Db } from '../record/database.js';

/**
 * The paper's measure on the station's own audit data (docs/quality.md): per group the confusion
 * counts of the labelled verdicts and the balanced accuracy — the mean recall over the classes
 * present in that group — and an Overall row from the pooled counts (Table 1's rules). A `flag`
 * is "abnormal predicted"; an `uncertain` flag too, unless `uncertain: 'exclude'` leaves those
 * out; `error` rows are no prediction and are counted apart. Rates (`tpr`, `tnr`,
 * `balanced_accuracy`, `label_coverage`) are fractions 0–1; the CLI's table shows them as %.
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
  /** The mean of the recalls present (TPR, TNR), 0–1. */
  balanced_accuracy: number | null;
  /** `labelled` / the verdicts counted: errors, and with `uncertain: 'exclude'` the uncertains, left out. */
  label_coverage: number | null;
  /** Flags (uncertain included) without a label: what waits for a human. */
  review_backlog: number;
}

/**
 * The latest label of each labelled inspection (SQLite takes a bare column from the row that
 * holds the max). Not `WHERE id IN (SELECT max(id) …)`: SQLite probed that list once per
 * inspection — minutes at 1,000,000 inspections and 100,000 labels.
 */
export const CURRENT_LABELS = 'SELECT inspection_id, label, max(id) AS latest FROM labels GROUP BY inspection_id';

/** The grouping and counting columns, over the inspections themselves or over `accuracy_counts`. */
interface Source { day: string; bundle: string; model: string; verdict: string; uncertain: string; label: string; weight: string; from: string }

const SCAN: Source = {
  day: 'substr(i.scored_at, 1, 10)', bundle: "coalesce(i.bundle, '(none)')", model: "coalesce(i.model_name || ' v' || i.model_version, '(none)')",
  verdict: 'i.verdict', uncertain: "i.reason = 'uncertain'", label: 'c.label', weight: '1', from: '',
};
const COUNTS: Source = {
  day: 'day', bundle: 'bundle', model: "CASE WHEN model_name = '' OR model_version = -1 THEN '(none)' ELSE model_name || ' v' || model_version END",
  verdict: 'verdict', uncertain: 'uncertain', label: "nullif(label, '')", weight: 'n', from: 'FROM accuracy_counts',
};

function groupSql(s: Source, by: AccuracyGroup): string {
  switch (by) {
    case 'bundle': return s.bundle;
    case 'model': return s.model;
    case 'day': return s.day;
    case 'week': return `strftime('%Y-W%W', ${s.day})`;
    case 'month': return `substr(${s.day}, 1, 7)`;
  }
}

function countsSql(s: Source, o: AccuracyOptions): string {
  const excluded = o.uncertain === 'exclude' ? s.uncertain : '0';
  const scored = `${s.verdict} != 'error' AND NOT (${excluded})`;
  const sum = (cond: string): string => `sum(${s.weight} * (${cond}))`;
  return `${groupSql(s, o.by)} AS grp, sum(${s.weight}) AS n,
      ${sum(`${s.verdict} = 'error'`)} AS errors,
      ${sum(`${s.verdict} != 'error' AND (${excluded})`)} AS uncertain_excluded,
      ${sum(`${scored} AND ${s.label} IS NOT NULL`)} AS labelled,
      ${sum(`${scored} AND ${s.verdict} = 'flag' AND ${s.label} = 'abnormal'`)} AS tp,
      ${sum(`${scored} AND ${s.verdict} = 'flag' AND ${s.label} = 'normal'`)} AS fp,
      ${sum(`${scored} AND ${s.verdict} = 'pass' AND ${s.label} = 'normal'`)} AS tn,
      ${sum(`${scored} AND ${s.verdict} = 'pass' AND ${s.label} = 'abnormal'`)} AS fn,
      ${sum(`${s.verdict} != 'error'`)} AS verdicts,
      ${sum(`${s.verdict} = 'flag' AND ${s.label} IS NULL`)} AS review_backlog`;
}

export type Counts = Record<string, number | string>;

function modelClauses(o: AccuracyOptions, name: string, version: string, params: unknown[]): string[] {
  if (!o.model) return [];
  const [n, v] = o.model.split(':');
  params.push(n);
  if (v === undefined) return [`${name} = ?`];
  params.push(Number(v));
  return [`${name} = ?`, `${version} = ?`];
}

/**
 * The inspections with `lo <= scored_at < hi` (either open), counted row by row. A whole range
 * joins the current labels once; a part of a day (`few`) looks each row's label up in
 * `labels_inspection` instead — 17 ms against 126 ms for a day of 28,800 at 110,000 labels, where
 * the join would first group every label.
 */
function scan(db: Db, o: AccuracyOptions, lo: string | undefined, hi: string | undefined, few = false): Counts[] {
  const params: unknown[] = [];
  const clauses: string[] = [];
  if (lo !== undefined) { clauses.push('i.scored_at >= ?'); params.push(lo); }
  if (hi !== undefined) { clauses.push('i.scored_at < ?'); params.push(hi); }
  clauses.push(...modelClauses(o, 'i.model_name', 'i.model_version', params));
  const where = clauses.length ? `WHERE ${clauses.join(' AND ')}` : '';
  if (few) {
    return db.prepare(`WITH i AS MATERIALIZED (
        SELECT i.scored_at, i.bundle, i.model_name, i.model_version, i.verdict, i.reason,
          (SELECT l.label FROM labels l WHERE l.inspection_id = i.id ORDER BY l.id DESC LIMIT 1) AS label
        FROM inspections i ${where})
      SELECT ${countsSql({ ...SCAN, label: 'i.label' }, o)} FROM i GROUP BY grp`).all(...params) as Counts[];
  }
  return db.prepare(`SELECT ${countsSql(SCAN, o)}
    FROM inspections i LEFT JOIN (${CURRENT_LABELS}) c ON c.inspection_id = i.id
    ${where} GROUP BY grp`).all(...params) as Counts[];
}

/**
 * Whole days from `accuracy_counts`: a day counts whole when every time stamp in it lies in
 * [since, until) — `day >= since` and `day < until`'s date, as the time stamps are ISO-8601 strings
 * compared as such. The rest of the range, at most a part of its first and of its last day, is
 * scanned row by row.
 */
function fromCounts(db: Db, given: AccuracyOptions): Counts[] {
  // `--since 2026-11-01` arrives as midnight UTC, which is the day itself (scored_at is toISOString's)
  const day = (t: string | undefined): string | undefined => (t?.endsWith('T00:00:00.000Z') ? t.slice(0, 10) : t);
  const o = { ...given, since: day(given.since), until: day(given.until) };
  const params: unknown[] = [];
  const clauses: string[] = [];
  const untilDay = o.until?.slice(0, 10);
  if (o.since !== undefined) { clauses.push('day >= ?'); params.push(o.since); }
  if (untilDay !== undefined) { clauses.push('day < ?'); params.push(untilDay); }
  clauses.push(...modelClauses(o, 'model_name', 'model_version', params));
  const whole = db.prepare(`SELECT ${countsSql(COUNTS, o)} ${COUNTS.from}
    ${clauses.length ? `WHERE ${clauses.join(' AND ')}` : ''} GROUP BY grp`).all(...params) as Counts[];
  const parts: Counts[][] = [whole];
  let lowEnd = o.since;
  if (o.since !== undefined && o.since.length > 10) { // the since day is partly in range
    lowEnd = min(`${o.since.slice(0, 10)}\u007f`, o.until);
    if (lowEnd === undefined || o.since < lowEnd) parts.push(scan(db, o, o.since, lowEnd, true));
  }
  if (untilDay !== undefined) { // the until day, up to until
    const highStart = [o.since, untilDay, lowEnd].reduce((a, b) => (b !== undefined && (a === undefined || b > a) ? b : a), undefined as string | undefined);
    if (highStart !== undefined && highStart < o.until!) parts.push(scan(db, o, highStart, o.until, true));
  }
  return merge(parts.flat());
}

const min = (a: string, b: string | undefined): string => (b !== undefined && b < a ? b : a);

function merge(rows: Counts[]): Counts[] {
  const by = new Map<string, Counts>();
  for (const r of rows) {
    const key = String(r.grp);
    const into = by.get(key);
    if (!into) { by.set(key, { ...r }); continue; }
    for (const [k, v] of Object.entries(r)) if (k !== 'grp') into[k] = Number(into[k] ?? 0) + Number(v ?? 0);
  }
  return [...by.values()];
}

/** Whether the database keeps `accuracy_counts` (schema 5; an older file opened read-only does not). */
const hasCounts = (db: Db): boolean => (db.pragma('user_version', { simple: true }) as number) >= 5;

export function accuracy(db: Db, o: AccuracyOptions): AccuracyRow[] {
  return report(hasCounts(db) ? fromCounts(db, o) : scan(db, o, o.since, o.until));
}

/** The same figures, every inspection scanned: what `accuracy_counts` must agree with (tests). */
export function accuracyByScan(db: Db, o: AccuracyOptions): AccuracyRow[] {
  return report(scan(db, o, o.since, o.until));
}

/** Rows of counts (`grp`, `n`, `errors`, `tp` …) as the table: rates, balanced accuracy, and the pooled Overall row. */
export function report(counts: Counts[]): AccuracyRow[] {
  const rows = counts.sort((a, b) => (String(a.grp) < String(b.grp) ? -1 : String(a.grp) > String(b.grp) ? 1 : 0));
  const out = rows.map((r) => finish(String(r.grp), r));
  const pooled: Record<string, number> = {};
  for (const r of rows) for (const [k, v] of Object.entries(r)) if (k !== 'grp') pooled[k] = (pooled[k] ?? 0) + Number(v ?? 0);
  return [...out, finish('Overall', pooled)];
}

function finish(group: string, r: Record<string, number | string>): AccuracyRow {
  const num = (k: string): number => Number(r[k] ?? 0);
  const [tp, fp, tn, fn] = [num('tp'), num('fp'), num('tn'), num('fn')];
  const tpr = tp + fn > 0 ? tp / (tp + fn) : null;
  const tnr = tn + fp > 0 ? tn / (tn + fp) : null;
  const present = [tpr, tnr].filter((x): x is number => x !== null);
  const counted = num('verdicts') - num('uncertain_excluded'); // what `labelled` counts among
  return {
    group, n: num('n'), errors: num('errors'), uncertain_excluded: num('uncertain_excluded'), labelled: num('labelled'), tp, fp, tn, fn, tpr, tnr,
    balanced_accuracy: present.length ? present.reduce((a, b) => a + b, 0) / present.length : null,
    label_coverage: counted > 0 ? num('labelled') / counted : null,
    review_backlog: num('review_backlog'),
  };
}

export interface ReviewRow { seq: number; id: string; scored_at: string; file_path: string; bundle: string | null; part_id: string | null; verdict: string; reason: string; p_abnormal: number | null; label: string | null }

type ReviewFilter = { unlabelled: boolean; verdict?: 'flag' | 'uncertain' | 'pass' };

/** Flags and uncertains (or `verdict`), without a label when `unlabelled`: over `inspections i`. */
function reviewWhere(o: ReviewFilter): string {
  const filter = o.verdict === 'uncertain' ? "i.reason = 'uncertain'" : o.verdict === 'pass' ? "i.verdict = 'pass'" : o.verdict === 'flag' ? "i.verdict = 'flag' AND i.reason != 'uncertain'" : "i.verdict = 'flag'";
  return o.unlabelled ? `${filter} AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.inspection_id = i.id)` : filter;
}

/** What waits for a human, oldest first (`reviewWhere`). */
export function reviewList(db: Db, o: ReviewFilter & { limit: number }): ReviewRow[] {
  return db.prepare(`SELECT i.seq, i.id, i.scored_at, i.file_path, i.bundle, i.part_id, i.verdict, i.reason, i.p_abnormal, c.label
    FROM inspections i LEFT JOIN (${CURRENT_LABELS}) c ON c.inspection_id = i.id
    WHERE ${reviewWhere(o)} ORDER BY i.seq LIMIT ?`).all(o.limit) as ReviewRow[];
}

/** How many rows `reviewList` would give without its limit. */
export function reviewCount(db: Db, o: ReviewFilter): number {
  return (db.prepare(`SELECT count(*) AS n FROM inspections i WHERE ${reviewWhere(o)}`).get() as { n: number }).n;
}
