import { reviewCount, reviewList, type ReviewRow } from '../audit/accuracy.js';
import type { Db } from '../record/database.js';

/** What the review page reads from the audit database (opened read-only). */

export const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface CaptureRow {
  id: string; seq: number; file_path: string; file_sha256: string | null; scored_at: string; captured_at: string | null;
  verdict: string; reason: string; p_abnormal: number | null; threshold: number | null; model_name: string | null; model_version: number | null;
  conversion: string | null; bounds_min: number | null; bounds_max: number | null; width: number | null; height: number | null;
  bundle: string | null; part_id: string | null; decode_ms: number | null; preprocess_ms: number | null; infer_ms: number | null; total_ms: number | null;
  error_code: string | null; error_message: string | null; label: string | null; labelled_by: string | null; label_note: string | null;
  where_x: number | null; where_y: number | null; strength: number | null; has_heatmap: number;
}

const CURRENT = 'SELECT l.inspection_id, l.label, l.labelled_by, l.note FROM labels l WHERE l.id = (SELECT max(id) FROM labels WHERE inspection_id = l.inspection_id)';

/** Flags and uncertains without a label, oldest first: `xray-qc review list --unlabelled`, and how many there are. */
export function queue(db: Db, limit: number): { rows: ReviewRow[]; total: number } {
  const rows = reviewList(db, { unlabelled: true, limit });
  const total = reviewCount(db, { unlabelled: true });
  return { rows, total };
}

export function capture(db: Db, id: string): CaptureRow | null {
  const row = db.prepare(`SELECT i.id, i.seq, i.file_path, i.file_sha256, i.scored_at, i.captured_at, i.verdict, i.reason, i.p_abnormal, i.threshold,
      i.model_name, i.model_version, i.conversion, i.bounds_min, i.bounds_max, i.width, i.height, i.bundle, i.part_id,
      i.decode_ms, i.preprocess_ms, i.infer_ms, i.total_ms, i.error_code, i.error_message,
      c.label, c.labelled_by, c.note AS label_note, h.where_x, h.where_y, h.strength, h.inspection_id IS NOT NULL AS has_heatmap
    FROM inspections i LEFT JOIN (${CURRENT} AND l.inspection_id = ?) c ON c.inspection_id = i.id
    LEFT JOIN heatmaps h ON h.inspection_id = i.id WHERE i.id = ?`).get(id, id) as CaptureRow | undefined;
  return row ?? null;
}

/** The neighbours in the review queue (by seq): previous and next unlabelled flag. */
export function neighbours(db: Db, seq: number): { prev: string | null; next: string | null } {
  const q = (cmp: string, order: string): string | null => (db.prepare(`SELECT id FROM inspections i WHERE i.seq ${cmp} ? AND i.verdict = 'flag'
    AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.inspection_id = i.id) ORDER BY i.seq ${order} LIMIT 1`).get(seq) as { id: string } | undefined)?.id ?? null;
  return { prev: q('<', 'DESC'), next: q('>', 'ASC') };
}

export interface HeatRow { width: number; height: number; scale: number; cells: Buffer }

export function heatmap(db: Db, id: string): HeatRow | null {
  return (db.prepare('SELECT width, height, scale, cells FROM heatmaps WHERE inspection_id = ?').get(id) as HeatRow | undefined) ?? null;
}

/** Per day: verdicts (errors apart), flags, and the flag rate. */
export function dailyFlagRate(db: Db, days: number): Array<{ day: string; verdicts: number; flags: number }> {
  return db.prepare(`SELECT substr(scored_at, 1, 10) AS day, sum(verdict != 'error') AS verdicts, sum(verdict = 'flag') AS flags
    FROM inspections WHERE scored_at >= ? GROUP BY day ORDER BY day`).all(new Date(Date.now() - days * 86_400_000).toISOString().slice(0, 10)) as Array<{ day: string; verdicts: number; flags: number }>;
}

/** p_abnormal in 20 bins of 0.05, split by the current label (none, normal, abnormal). */
export function scoreHistogram(db: Db): Array<{ bin: number; none: number; normal: number; abnormal: number }> {
  const rows = db.prepare(`SELECT min(19, CAST(i.p_abnormal * 20 AS INTEGER)) AS bin, coalesce(c.label, 'none') AS label, count(*) AS n
    FROM inspections i LEFT JOIN (${CURRENT}) c ON c.inspection_id = i.id WHERE i.p_abnormal IS NOT NULL GROUP BY bin, label`).all() as Array<{ bin: number; label: 'none' | 'normal' | 'abnormal'; n: number }>;
  const bins = Array.from({ length: 20 }, (_, bin) => ({ bin, none: 0, normal: 0, abnormal: 0 }));
  for (const r of rows) bins[r.bin][r.label] += r.n;
  return bins;
}
