import { isAbsolute, resolve } from 'node:path';
import { XrayError } from '../errors.js';
import type { Db } from './database.js';

/**
 * Operators' labels: what a human found on an inspected part. Append-only — a correction is a
 * new row; an inspection's label is its latest. A label equal to the current one (same label,
 * by and note) adds nothing, so importing the same file twice changes nothing.
 */

export const LABELS = ['normal', 'abnormal'] as const;
export type Label = (typeof LABELS)[number];

export interface LabelInput {
  /** An inspection id, `seq:N`, or `file:PATH` (the latest inspection of that path). */
  ref: string;
  label: string;
  by?: string | null;
  note?: string | null;
  labelledAt?: string | null;
  source: string;
}

export interface LabelRow { id: number; inspection_id: string; seq: number; file_path: string; verdict: string; label: Label; labelled_by: string | null; note: string | null; source: string; labelled_at: string }

const bad = (message: string): XrayError => new XrayError('LABEL_INVALID', message);

/** The inspection id a REF names. */
export function resolveRef(db: Db, ref: string): string {
  let row: { id: string } | undefined;
  if (ref.startsWith('seq:') && /^\d+$/.test(ref.slice(4))) row = db.prepare('SELECT id FROM inspections WHERE seq = ?').get(Number(ref.slice(4))) as typeof row;
  else if (ref.startsWith('file:')) return byFile(db, ref.slice(5));
  else row = db.prepare('SELECT id FROM inspections WHERE id = ?').get(ref) as typeof row;
  if (!row) throw bad(`${ref}: no such inspection (give an inspection id, seq:N or file:PATH)`);
  return row.id;
}

/**
 * `file:PATH`: the latest inspection of that file. The audit trail records absolute paths; a
 * relative PATH is tried against the working directory, then as the end of a recorded path at a
 * folder boundary (so `S2-B02/electrode_0009.tif` and `captures/S2-B02/electrode_0009.tif` find
 * `/var/lib/xray-qc/captures/S2-B02/electrode_0009.tif`), and refused when that names two files.
 */
function byFile(db: Db, path: string): string {
  const latest = db.prepare('SELECT id FROM inspections WHERE file_path = ? ORDER BY seq DESC LIMIT 1');
  for (const p of isAbsolute(path) ? [path] : [path, resolve(path)]) {
    const row = latest.get(p) as { id: string } | undefined;
    if (row) return row.id;
  }
  const tail = path.replace(/^(\.\/)+/, '');
  if (!isAbsolute(path) && tail && !tail.split('/').includes('..')) {
    const files = db.prepare(`SELECT DISTINCT file_path FROM inspections
      WHERE length(file_path) > length(?) AND substr(file_path, -length(?) - 1) = '/' || ? LIMIT 3`).all(tail, tail, tail) as Array<{ file_path: string }>;
    if (files.length === 1) return (latest.get(files[0].file_path) as { id: string }).id;
    if (files.length > 1) throw bad(`file:${path} names more than one inspected file (${files.map((f) => f.file_path).join(', ')}${files.length === 3 ? ', …' : ''}): give more of the path, or the absolute one`);
  }
  throw bad(`file:${path}: no inspection of that file (file: takes the path as recorded — absolute, as \`audit list\` shows it — or its end below capture.dir, e.g. file:S2-B02/electrode_0009.tif)`);
}

function checked(db: Db, input: LabelInput): { inspection: string; label: Label; by: string | null; note: string | null; at: string } {
  if (!(LABELS as readonly string[]).includes(input.label)) throw bad(`label '${input.label}': expected normal or abnormal`);
  const at = input.labelledAt?.trim() ? new Date(input.labelledAt) : new Date();
  if (Number.isNaN(at.getTime())) throw bad(`labelled_at '${input.labelledAt}': not a date`);
  return { inspection: resolveRef(db, input.ref), label: input.label as Label, by: input.by?.trim() || null, note: input.note?.trim() || null, at: at.toISOString() };
}

function append(db: Db, l: ReturnType<typeof checked>, source: string): boolean {
  const current = db.prepare('SELECT label, labelled_by, note FROM labels WHERE inspection_id = ? ORDER BY id DESC LIMIT 1').get(l.inspection) as { label: string; labelled_by: string | null; note: string | null } | undefined;
  if (current && current.label === l.label && current.labelled_by === l.by && current.note === l.note) return false;
  db.prepare('INSERT INTO labels (inspection_id, label, labelled_by, note, source, labelled_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
    .run(l.inspection, l.label, l.by, l.note, source, l.at, new Date().toISOString());
  return true;
}

/** One label; `added` false when it equals the inspection's current one. */
export function setLabel(db: Db, input: LabelInput): { inspection: string; added: boolean } {
  const l = checked(db, input);
  return { inspection: l.inspection, added: append(db, l, input.source) };
}

/**
 * A CSV of labels (`id` or `file`, `label`, optional `by`, `note`, `labelled_at`): every line is
 * checked first, then all are added in one transaction — a bad line names its number and nothing
 * is imported.
 */
export function importLabels(db: Db, csv: string, source: string): { lines: number; added: number; unchanged: number } {
  const rows = parseCsv(csv);
  if (rows.length === 0) throw bad('the file is empty');
  const header = rows[0].map((h) => h.trim().toLowerCase());
  const col = (name: string): number => header.indexOf(name);
  if (col('label') < 0 || (col('id') < 0 && col('file') < 0)) throw bad(`line 1: the header needs 'label' and 'id' or 'file' (got ${header.join(',')})`);
  const inputs = rows.slice(1).map((r, i) => {
    const line = i + 2;
    if (r.length !== header.length) throw bad(`line ${line}: ${r.length} fields, the header has ${header.length}`);
    const get = (name: string): string | undefined => (col(name) >= 0 ? r[col(name)] : undefined);
    const id = get('id')?.trim();
    const ref = id ? id : `file:${get('file') ?? ''}`;
    try {
      return checked(db, { ref, label: (get('label') ?? '').trim(), by: get('by'), note: get('note'), labelledAt: get('labelled_at'), source });
    } catch (err) {
      throw bad(`line ${line}: ${(err as Error).message}`);
    }
  });
  let added = 0;
  db.transaction(() => {
    for (const l of inputs) if (append(db, l, source)) added++;
  })();
  return { lines: inputs.length, added, unchanged: inputs.length - added };
}

export function listLabels(db: Db, limit: number): LabelRow[] {
  return db.prepare(`SELECT l.id, l.inspection_id, i.seq, i.file_path, i.verdict, l.label, l.labelled_by, l.note, l.source, l.labelled_at
    FROM labels l JOIN inspections i ON i.id = l.inspection_id ORDER BY l.id DESC LIMIT ?`).all(limit) as LabelRow[];
}

/** RFC 4180 CSV: commas, double-quoted fields with "" for a quote, CRLF or LF. Throws on an unterminated quote. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (c === '"') quoted = false;
      else { if (c === '\n') line++; field += c; }
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') { row.push(field); field = ''; }
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      if (row.length > 1 || row[0] !== '') rows.push(row);
      row = [];
      field = '';
      line++;
    } else if (c === '"') throw bad(`line ${line}: a quote inside an unquoted field`);
    else field += c;
  }
  if (quoted) throw bad(`line ${line}: a quoted field is not closed`);
  row.push(field);
  if (row.length > 1 || row[0] !== '') rows.push(row);
  return rows;
}

/** A `labels` row as the plant receives it (`<prefix>/label`, docs/mqtt.md; `xray-qc collect`). */
export interface LabelMessage { station_id: string; label_id: number; inspection_id: string; label: Label; labelled_by: string | null; note: string | null; source: string; labelled_at: string }

export function labelMessage(stationId: string, row: { id: number; inspection_id: string; label: Label; labelled_by: string | null; note: string | null; source: string; labelled_at: string }): LabelMessage {
  return { station_id: stationId, label_id: row.id, inspection_id: row.inspection_id, label: row.label, labelled_by: row.labelled_by, note: row.note, source: row.source, labelled_at: row.labelled_at };
}
