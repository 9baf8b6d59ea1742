import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { accuracy, accuracyByScan, type AccuracyGroup, type AccuracyOptions } from '../src/audit/accuracy.js';
import { migrate, openDatabase, type Db } from '../src/record/database.js';
import { setLabel } from '../src/record/labels.js';
import { MIGRATIONS } from '../src/record/schema.js';
import Sqlite from '../src/record/sqlite.js';
import { Store } from '../src/record/store.js';
import type { AuditRecord } from '../src/pipeline/messages.js';

/**
 * `accuracy_counts` (schema 5) answers `audit accuracy` from per-day counts plus a scan of the
 * range's partial first and last days. It must give exactly what scanning every inspection gives:
 * for every grouping, both uncertain rules, model filters and ranges that start and end mid-day,
 * at midnight, on the same day, backwards — after labels are set, corrected and set back, and on a
 * database that had its rows before the migration (the counts are backfilled).
 */

// deterministic pseudo-random numbers
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32);
}

function record(i: number, r: () => number): AuditRecord {
  const at = new Date(Date.UTC(2026, 10, 28) + Math.floor(r() * 4 * 86_400_000)).toISOString(); // four days, any time
  const u = r();
  const verdict = u < 0.08 ? 'error' : u < 0.4 ? 'flag' : 'pass';
  const reason = verdict === 'error' ? 'TIFF_TRUNCATED' : verdict === 'flag' ? (r() < 0.3 ? 'uncertain' : 'anomaly') : r() < 0.2 ? 'uncertain' : 'normal';
  const noModel = verdict === 'error' && r() < 0.5;
  return {
    station_id: 's', file_path: `/c/${i}.tif`, file_sha256: i.toString(16).padStart(64, '0'), file_bytes: 1, file_mtime_ms: i, width: 1, height: 1,
    captured_at: at, scored_at: at, verdict, reason, p_abnormal: verdict === 'error' ? null : r(), threshold: 0.5,
    model_name: noModel ? null : 'm', model_version: noModel ? null : 1 + Math.floor(r() * 2), model_sha256: null, bundle_sha256: null,
    conversion: 'global', bounds_min: 0, bounds_max: 1, local_min: null, local_max: null, decode_ms: 1, preprocess_ms: 1, infer_ms: 1, total_ms: 3,
    error_code: verdict === 'error' ? 'TIFF_TRUNCATED' : null, error_message: null, bundle: r() < 0.1 ? null : `B${Math.floor(r() * 5)}`, part_id: null,
    clip_low: 0, clip_high: 0, p0_01: 0, p50: 0, p99_99: 0,
  } as AuditRecord;
}

/** Through the station's Store; `raw`: a plain INSERT, for a database at an older schema than the Store's. */
function fill(db: Db, n: number, seed: number, raw = false): void {
  const r = rng(seed);
  const store = raw ? null : new Store(db);
  db.transaction(() => {
    for (let i = 0; i < n; i++) {
      const rec = record(seed * 10_000 + i, r);
      if (store) { store.record(rec, 's/verdict'); continue; }
      const row = { ...rec, id: randomUUID() };
      db.prepare(`INSERT INTO inspections (${Object.keys(row).join(', ')}) VALUES (${Object.keys(row).map((k) => `@${k}`).join(', ')})`).run(row);
    }
  })();
}

function label(db: Db, seed: number, rounds: number): void {
  const r = rng(seed);
  const ids = (db.prepare('SELECT id FROM inspections').all() as Array<{ id: string }>).map((x) => x.id);
  for (let k = 0; k < rounds; k++) {
    for (const id of ids) if (r() < 0.35) setLabel(db, { ref: id, label: r() < 0.4 ? 'abnormal' : 'normal', by: r() < 0.5 ? 'qe' : 'op', source: 'test' });
  }
}

const RANGES: Array<[string | undefined, string | undefined]> = [
  [undefined, undefined],
  ['2026-11-29', undefined],
  ['2026-11-29T00:00:00.000Z', '2026-12-01T00:00:00.000Z'],
  ['2026-11-28T13:45:10.123Z', undefined],
  [undefined, '2026-11-30T07:00:00.000Z'],
  ['2026-11-28T06:00:00.000Z', '2026-11-30T18:30:00.000Z'],
  ['2026-11-29T03:00:00.000Z', '2026-11-29T21:00:00.000Z'], // one day, both ends inside it
  ['2026-11-30T12:00:00.000Z', '2026-11-29T12:00:00.000Z'], // backwards: nothing
  ['2026-11', '2026-12'],
  ['2026-11-29T00:00:00.000Z', '2026-11-29T00:00:00.000Z'],
];

function compare(db: Db): number {
  let checked = 0;
  for (const by of ['bundle', 'model', 'day', 'week', 'month'] as AccuracyGroup[]) {
    for (const uncertain of ['flag', 'exclude'] as const) {
      for (const model of [undefined, 'm', 'm:2']) {
        for (const [since, until] of RANGES) {
          const o: AccuracyOptions = { by, uncertain, model, since, until };
          const want = accuracyByScan(db, o);
          expect(accuracy(db, o), JSON.stringify(o)).toEqual(want);
          for (const r of want) { // coverage is of what was counted: errors and, with exclude, the uncertains left out
            const counted = r.n - r.errors - r.uncertain_excluded;
            expect(r.label_coverage, JSON.stringify(o)).toBe(counted > 0 ? r.labelled / counted : null);
          }
          checked += want.length;
        }
      }
    }
  }
  return checked;
}

describe('audit accuracy from accuracy_counts', () => {
  it('equals a scan of every inspection, before and after labels are set and corrected', () => {
    const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'xray-qc-acc-')), 'audit.db'));
    fill(db, 1500, 1);
    compare(db);
    label(db, 2, 3); // some inspections labelled up to three times, back and forth
    const labels = (db.prepare('SELECT count(*) AS n FROM labels').get() as { n: number }).n;
    expect(labels).toBeGreaterThan(800);
    const overall = accuracy(db, { by: 'bundle', uncertain: 'flag' }).at(-1)!;
    expect(overall.tp * overall.fp * overall.tn * overall.fn).toBeGreaterThan(0); // every cell exercised
    expect(compare(db)).toBeGreaterThan(500);
    fill(db, 300, 3); // more inspections after the labels
    compare(db);
    db.close();
  });

  it('is backfilled by the migration from the rows and labels already there', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'xray-qc-acc-')), 'audit.db');
    const old = new Sqlite(path);
    old.pragma('foreign_keys = ON');
    for (let v = 0; v < 4; v++) old.exec(MIGRATIONS[v]);
    old.pragma('user_version = 4');
    fill(old, 800, 4, true);
    label(old, 5, 2);
    expect(old.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'accuracy_counts'").get()).toEqual({ n: 0 });
    const scanned = accuracyByScan(old, { by: 'day', uncertain: 'flag' });
    expect(accuracy(old, { by: 'day', uncertain: 'flag' })).toEqual(scanned); // schema 4: scanned
    migrate(old);
    expect(old.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(accuracy(old, { by: 'day', uncertain: 'flag' })).toEqual(scanned);
    compare(old);
    label(old, 6, 1);
    compare(old);
    old.close();
  });
});
