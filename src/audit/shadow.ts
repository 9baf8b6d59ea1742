import type { Db } from '../record/database.js';
import { CURRENT_LABELS } from './accuracy.js';

/** The shadow candidate against the active model on the captures both scored (`xray-qc models compare`). */
export interface Comparison {
  candidate: { name: string; version: number; bundle_sha256: string } | null;
  /** Scored by the candidate / recorded (not errors) since its first score. */
  coverage: { shadowed: number; recorded: number; share: number | null };
  verdict_agreement: number | null;
  delta_p_abnormal: { median: number; p95: number; max: number } | null;
  flips: Array<{ inspection_id: string; file_path: string; active: string; candidate: string; p_active: number | null; p_candidate: number | null }>;
  /** On the labelled captures both scored: balanced accuracy (%) of each, with their counts. */
  labelled: { n: number; active: Confusion; candidate: Confusion };
}

export interface Confusion { tp: number; fp: number; tn: number; fn: number; balanced_accuracy: number | null }

function confusion(pairs: Array<{ flag: boolean; abnormal: boolean }>): Confusion {
  const c = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (const p of pairs) {
    if (p.flag) c[p.abnormal ? 'tp' : 'fp']++;
    else c[p.abnormal ? 'fn' : 'tn']++;
  }
  const recalls = [c.tp + c.fn ? c.tp / (c.tp + c.fn) : null, c.tn + c.fp ? c.tn / (c.tn + c.fp) : null].filter((x): x is number => x !== null);
  return { ...c, balanced_accuracy: recalls.length ? recalls.reduce((a, b) => a + b, 0) / recalls.length : null };
}

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];

/** `candidate`: its bundle_sha256, or (default) the candidate with the latest shadow score. */
export function compareShadow(db: Db, o: { since?: string; candidate?: { name: string; version: number } } = {}): Comparison {
  const pick = o.candidate
    ? db.prepare('SELECT model_name AS name, model_version AS version, bundle_sha256 FROM shadow_scores WHERE model_name = ? AND model_version = ? ORDER BY id DESC LIMIT 1').get(o.candidate.name, o.candidate.version)
    : db.prepare('SELECT model_name AS name, model_version AS version, bundle_sha256 FROM shadow_scores ORDER BY id DESC LIMIT 1').get();
  const candidate = (pick as Comparison['candidate'] | undefined) ?? null;
  const empty: Comparison = { candidate, coverage: { shadowed: 0, recorded: 0, share: null }, verdict_agreement: null, delta_p_abnormal: null, flips: [], labelled: { n: 0, active: confusion([]), candidate: confusion([]) } };
  if (!candidate) return empty;
  const since = o.since ?? '';
  const rows = db.prepare(`SELECT s.inspection_id, i.file_path, i.verdict AS a_verdict, i.reason AS a_reason, i.p_abnormal AS a_p, s.verdict AS c_verdict, s.reason AS c_reason, s.p_abnormal AS c_p, l.label
    FROM shadow_scores s JOIN inspections i ON i.id = s.inspection_id LEFT JOIN (${CURRENT_LABELS}) l ON l.inspection_id = s.inspection_id
    WHERE s.bundle_sha256 = ? AND i.scored_at >= ? AND s.verdict != 'error' AND i.verdict != 'error'
    AND s.id = (SELECT max(id) FROM shadow_scores t WHERE t.inspection_id = s.inspection_id AND t.bundle_sha256 = s.bundle_sha256)`).all(candidate.bundle_sha256, since) as Array<{
      inspection_id: string; file_path: string; a_verdict: string; a_reason: string; a_p: number; c_verdict: string; c_reason: string; c_p: number; label: string | null }>;
  const first = db.prepare('SELECT min(i.scored_at) AS at FROM shadow_scores s JOIN inspections i ON i.id = s.inspection_id WHERE s.bundle_sha256 = ?').get(candidate.bundle_sha256) as { at: string | null };
  const recorded = (db.prepare("SELECT count(*) AS n FROM inspections WHERE scored_at >= ? AND verdict != 'error'").get(since > (first.at ?? '') ? since : first.at ?? '') as { n: number }).n;
  const deltas = rows.map((r) => Math.abs(r.a_p - r.c_p)).sort((a, b) => a - b);
  const labelled = rows.filter((r) => r.label !== null);
  return {
    candidate,
    coverage: { shadowed: rows.length, recorded, share: recorded ? rows.length / recorded : null },
    verdict_agreement: rows.length ? rows.filter((r) => r.a_verdict === r.c_verdict).length / rows.length : null,
    delta_p_abnormal: deltas.length ? { median: quantile(deltas, 0.5), p95: quantile(deltas, 0.95), max: deltas[deltas.length - 1] } : null,
    flips: rows.filter((r) => r.a_verdict !== r.c_verdict).map((r) => ({ inspection_id: r.inspection_id, file_path: r.file_path, active: r.a_verdict, candidate: r.c_verdict, p_active: r.a_p, p_candidate: r.c_p })),
    labelled: {
      n: labelled.length,
      active: confusion(labelled.map((r) => ({ flag: r.a_verdict === 'flag', abnormal: r.label === 'abnormal' }))),
      candidate: confusion(labelled.map((r) => ({ flag: r.c_verdict === 'flag', abnormal: r.label === 'abnormal' }))),
    },
  };
}

/** How many labelled captures a comparison needs before `models activate` trusts it. */
export const MIN_LABELLED_FOR_VERDICT = 30;
