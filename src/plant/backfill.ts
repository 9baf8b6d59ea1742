import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type pg from 'pg';
import type { Db } from '../record/database.js';
import { labelMessage, type Label } from '../record/labels.js';
import { verdictMessage, type VerdictMessage } from '../record/store.js';
import type { AuditRecord } from '../pipeline/messages.js';
import { ingest, LabelSchema, payloadSha, VerdictSchema, type IngestResult, type Item } from './ingest.js';

/**
 * `xray-qc collect backfill` (docs/plant.md): a station's audit rows and labels into the plant
 * database straight from its SQLite file (or an `audit export --format jsonl` file), for a
 * station that was cut off longer than the broker keeps messages. The messages are built exactly
 * as the station publishes them, so what already arrived over MQTT is a duplicate, kept once;
 * batches of `batch` rows, each in its own transaction, so an interrupted backfill resumes by
 * running again.
 */

export interface BackfillTotals { rows: number; verdicts: number; labels: number; duplicates: number; conflicts: number; invalid: number }

/** A station's audit row with its heat map's hottest cell (schema 7: `STATION_ROWS`). */
export type StationRow = AuditRecord & { id: string; seq: number; has_heat?: number; where_x?: number | null; where_y?: number | null; strength?: number | null };

/** The station's rows with what its verdicts carried (`where` from `heatmaps`), by seq. */
export const STATION_ROWS = 'SELECT i.*, h.inspection_id IS NOT NULL AS has_heat, h.where_x, h.where_y, h.strength FROM inspections i LEFT JOIN heatmaps h ON h.inspection_id = i.id';

/** The verdict as the station published it: `where` only for a capture its model gave a heat map. */
export function stationVerdict(row: StationRow): VerdictMessage {
  const where = !row.has_heat ? undefined : row.where_x === null || row.where_x === undefined ? null : { x: row.where_x, y: row.where_y!, strength: row.strength! };
  return verdictMessage(row, where);
}

function verdictItem(row: StationRow): Item {
  const msg = stationVerdict(row);
  const r = VerdictSchema.safeParse(msg);
  return r.success ? { kind: 'verdict', msg: r.data, sha: payloadSha(msg), source: 'backfill' } : { kind: 'invalid', where: `backfill seq ${row.seq}`, raw: JSON.stringify(msg), why: r.error.message };
}

async function run(db: pg.ClientBase, batches: AsyncIterable<Item[]> | Iterable<Item[]>, progress: (t: BackfillTotals) => void): Promise<BackfillTotals> {
  const totals: BackfillTotals = { rows: 0, verdicts: 0, labels: 0, duplicates: 0, conflicts: 0, invalid: 0 };
  const partitions = new Set<string>();
  for await (const items of batches) {
    const r: IngestResult = await ingest(db, items, partitions);
    for (const p of r.partitions) partitions.add(p);
    totals.rows += items.length;
    totals.verdicts += r.verdicts;
    totals.labels += r.labels;
    totals.duplicates += r.duplicates;
    totals.conflicts += r.conflicts.length;
    totals.invalid += r.invalid;
    progress(totals);
  }
  return totals;
}

export async function backfillFromStation(db: pg.ClientBase, station: Db, batch: number, progress: (t: BackfillTotals) => void): Promise<BackfillTotals> {
  const stationId = (station.prepare('SELECT station_id FROM inspections ORDER BY seq DESC LIMIT 1').get() as { station_id: string } | undefined)?.station_id;
  const withHeat = station.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'heatmaps'").get() !== undefined; // schema 7
  function* batches(): Iterable<Item[]> {
    let after = 0;
    for (;;) {
      const rows = station.prepare(withHeat
        ? `${STATION_ROWS} WHERE i.seq > ? ORDER BY i.seq LIMIT ?`
        : 'SELECT * FROM inspections WHERE seq > ? ORDER BY seq LIMIT ?').all(after, batch) as StationRow[];
      if (!rows.length) break;
      after = rows[rows.length - 1].seq;
      yield rows.map(verdictItem);
    }
    if (!stationId) return;
    let afterLabel = 0;
    for (;;) {
      const rows = station.prepare('SELECT id, inspection_id, label, labelled_by, note, source, labelled_at FROM labels WHERE id > ? ORDER BY id LIMIT ?')
        .all(afterLabel, batch) as Array<{ id: number; inspection_id: string; label: Label; labelled_by: string | null; note: string | null; source: string; labelled_at: string }>;
      if (!rows.length) break;
      afterLabel = rows[rows.length - 1].id;
      yield rows.map((row): Item => {
        const msg = labelMessage(stationId, row);
        return { kind: 'label', msg: LabelSchema.parse(msg), sha: payloadSha(msg), source: 'backfill' };
      });
    }
  }
  return run(db, batches(), progress);
}

/** From `xray-qc audit export --format jsonl` (one inspection row per line; no labels). */
export async function backfillFromJsonl(db: pg.ClientBase, file: string, batch: number, progress: (t: BackfillTotals) => void): Promise<BackfillTotals> {
  async function* batches(): AsyncIterable<Item[]> {
    let items: Item[] = [];
    let n = 0;
    for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
      n++;
      if (!line.trim()) continue;
      try {
        items.push(verdictItem(JSON.parse(line) as StationRow));
      } catch {
        items.push({ kind: 'invalid', where: `${file}:${n}`, raw: line, why: 'not JSON' });
      }
      if (items.length >= batch) { yield items; items = []; }
    }
    if (items.length) yield items;
  }
  return run(db, batches(), progress);
}
