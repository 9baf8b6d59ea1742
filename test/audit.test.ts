import { join } from 'node:path';
import Sqlite from '../src/record/sqlite.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/record/database.js';
import type { AuditRecord } from '../src/pipeline/messages.js';
import { Store } from '../src/record/store.js';
import { parseCsv, setLabel } from '../src/record/labels.js';
import { cli, jsonLines, tempDir } from './helpers.js';

function row(i: number): AuditRecord {
  const verdict = i % 10 === 0 ? 'error' : i % 4 === 0 ? 'flag' : 'pass';
  const ok = verdict !== 'error';
  const at = new Date(Date.UTC(2026, 10, 20 + Math.floor(i / 1000), (i % 1000) % 24, i % 60)).toISOString();
  return {
    station_id: 'xray-1', file_path: `/c/cap-${i}.tif`, file_sha256: i.toString(16).padStart(64, '0'), file_bytes: 1000 + i, file_mtime_ms: i,
    width: 1145, height: 2072, captured_at: at, scored_at: at, verdict, reason: ok ? (verdict === 'flag' ? 'anomaly' : 'normal') : 'TIFF_TRUNCATED',
    p_abnormal: ok ? (verdict === 'flag' ? 0.9 : 0.1) : null, threshold: 0.5, model_name: 'm', model_version: i < 2500 ? 1 : 2, model_sha256: 'ab'.repeat(32), bundle_sha256: 'cd'.repeat(32),
    conversion: 'global', bounds_min: 1700, bounds_max: 2800, local_min: null, local_max: null, decode_ms: 1, preprocess_ms: 1,
    infer_ms: 1, total_ms: ok ? (i % 100) + 1 : null, error_code: ok ? null : 'TIFF_TRUNCATED', error_message: ok ? null : 'cut, "short"', bundle: `B${Math.floor(i / 10)}`, part_id: `P-${i}`, clip_low: 0, clip_high: 0, p0_01: 1700, p50: 2200, p99_99: 2700,
  };
}

describe('xray-qc audit', () => {
  let db: string;
  beforeAll(() => {
    db = join(tempDir(), 'audit.db');
    const d = openDatabase(db);
    const store = new Store(d);
    d.transaction(() => { for (let i = 0; i < 5000; i++) store.record(row(i), 'xray-qc/xray-1/verdict'); })();
    // flags at seq 5 and 9, passes at 2 and 3
    for (const seq of [2, 3, 5, 9]) setLabel(d, { ref: `seq:${seq}`, label: seq === 3 || seq === 5 ? 'abnormal' : 'normal', by: 'qe', note: seq === 9 ? 'dust, "not" a defect' : undefined, source: 'test' });
    d.close();
  });

  it('list filters by verdict and time, newest first', () => {
    const r = cli(['audit', 'list', '--db', db, '--verdict', 'flag', '--since', '2026-11-22T00:00:00Z', '--until', '2026-11-23T00:00:00Z', '--limit', '5', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const got = jsonLines<{ seq: number; verdict: string; scored_at: string }>(r.stdout);
    expect(got).toHaveLength(5);
    expect(got.every((x) => x.verdict === 'flag' && x.scored_at.startsWith('2026-11-22'))).toBe(true);
    expect(got.map((x) => x.seq)).toEqual([...got.map((x) => x.seq)].sort((a, b) => b - a));
  });

  it('list as a table has a header and a model column; export defaults to CSV; a missing --db names the file', () => {
    const r = cli(['audit', 'list', '--db', db, '--limit', '3']);
    expect(r.code, r.stderr).toBe(0);
    const [header, ...rows] = r.stdout.trimEnd().split('\n');
    expect(header.trim().split(/\s+/)).toEqual(['seq', 'scored_at', 'verdict', 'reason', 'p_abnormal', 'model', 'file']);
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatch(/^5000 +\S+ +pass +normal +0\.1000 +m v2 +\/c\/cap-4999\.tif$/);
    const csv = cli(['audit', 'export', '--db', db, '--since', '2026-11-24T00:00:00Z']);
    expect(csv.code, csv.stderr).toBe(0);
    expect(csv.stdout.split('\n')[0]).toMatch(/^seq,id,station_id,file_path,/);
    const missing = join(tempDir(), 'nope.db');
    const m = cli(['audit', 'list', '--db', missing]);
    expect(m.code).toBe(2);
    expect(m.stderr).toBe(`xray-qc: USAGE_INVALID: ${missing}: no such audit database\n`);
  });

  it('summary counts per verdict and model equal plain SQL; latency percentiles by nearest rank', () => {
    const got = jsonLines<{ group: string; total: number; pass: number; flag: number; error: number; flag_rate: number; latency_p50_ms: number; latency_p95_ms: number }>(
      cli(['audit', 'summary', '--db', db, '--by', 'model', '--json']).stdout,
    );
    const d = new Sqlite(db, { readonly: true });
    const want = d.prepare(`SELECT 'm v' || model_version AS g, count(*) t, sum(verdict='pass') p, sum(verdict='flag') f, sum(verdict='error') e
      FROM inspections GROUP BY model_version ORDER BY g`).all() as Array<{ g: string; t: number; p: number; f: number; e: number }>;
    const lat = (d.prepare('SELECT total_ms FROM inspections WHERE model_version = 1 AND total_ms IS NOT NULL ORDER BY total_ms').all() as Array<{ total_ms: number }>).map((x) => x.total_ms);
    d.close();
    expect(got.map((g) => [g.group, g.total, g.pass, g.flag, g.error])).toEqual(want.map((w) => [w.g, w.t, w.p, w.f, w.e]));
    expect(got[0].flag_rate).toBeCloseTo(want[0].f / (want[0].p + want[0].f), 10);
    expect(got[0].latency_p50_ms).toBe(lat[Math.ceil(0.5 * lat.length) - 1]);
    expect(got[0].latency_p95_ms).toBe(lat[Math.ceil(0.95 * lat.length) - 1]);
    const byDay = jsonLines<{ group: string; total: number }>(cli(['audit', 'summary', '--db', db, '--by', 'day', '--json']).stdout);
    expect(byDay.map((x) => x.group)).toEqual(['2026-11-20', '2026-11-21', '2026-11-22', '2026-11-23', '2026-11-24']);
    expect(byDay.reduce((a, b) => a + b.total, 0)).toBe(5000);
  });

  it('show by id and by seq; export csv and jsonl with every row', () => {
    const first = jsonLines<{ id: string }>(cli(['audit', 'list', '--db', db, '--limit', '1', '--json']).stdout)[0];
    expect(JSON.parse(cli(['audit', 'show', '--db', db, first.id]).stdout).seq).toBe(5000);
    expect(JSON.parse(cli(['audit', 'show', '--db', db, '11']).stdout).error_message).toBe('cut, "short"');
    const nope = cli(['audit', 'show', '--db', db, 'nope']);
    expect(nope.code).toBe(2);
    expect(nope.stderr).toMatch(/^xray-qc audit show: USAGE_INVALID: no inspection nope/);
    const csv = cli(['audit', 'export', '--db', db, '--format', 'csv']).stdout.trim().split('\n');
    expect(csv).toHaveLength(5001);
    expect(csv[0].split(',').slice(0, 3)).toEqual(['seq', 'id', 'station_id']);
    expect(csv.find((l) => l.startsWith('11,'))).toContain('"cut, ""short"""');
    expect(jsonLines(cli(['audit', 'export', '--db', db, '--format', 'jsonl', '--since', '2026-11-24T00:00:00Z']).stdout)).toHaveLength(1000);
  });

  it('the audit queries use indexes, not table scans', () => {
    const d = new Sqlite(db, { readonly: true });
    const plan = (sql: string, ...p: unknown[]): string => (d.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...p) as Array<{ detail: string }>).map((x) => x.detail).join('; ');
    expect(plan('SELECT count(*) FROM inspections WHERE scored_at >= ? AND scored_at < ?', 'a', 'b')).toMatch(/USING (COVERING )?INDEX inspections_scored_at/);
    expect(plan('SELECT count(*) FROM inspections WHERE verdict = ? AND scored_at >= ?', 'flag', 'x')).toMatch(/USING (COVERING )?INDEX inspections_verdict_scored_at/);
    expect(plan('SELECT * FROM inspections WHERE file_path = ? AND file_sha256 = ?', 'a', 'b')).toMatch(/USING INDEX inspections_capture/);
    const flags = plan('SELECT * FROM inspections WHERE verdict = ? ORDER BY seq DESC LIMIT 100', 'flag');
    expect(flags).toMatch(/USING INDEX inspections_verdict_seq/);
    expect(flags).not.toMatch(/TEMP B-TREE/); // newest flags without sorting them all
    expect(plan('SELECT * FROM inspections WHERE model_name = ? AND model_version = ?', 'm', 1)).toMatch(/USING INDEX inspections_model/);
    d.close();
  });

  it('reads while a writer holds a transaction (WAL)', () => {
    const w = new Sqlite(db);
    w.exec('BEGIN IMMEDIATE; UPDATE inspections SET reason = reason WHERE seq = 1;');
    try {
      const r = cli(['audit', 'summary', '--db', db, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(jsonLines<{ total: number }>(r.stdout)[0].total).toBe(5000);
    } finally {
      w.exec('ROLLBACK');
      w.close();
    }
  });

  it('every read command prints table (default), json, csv and md: the same rows; csv has the json fields', () => {
    const commands: Array<[string[], number]> = [
      [['audit', 'list', '--limit', '7'], 7], [['audit', 'summary', '--by', 'day'], 5], [['audit', 'drift', '--by', 'day'], 5],
      [['audit', 'accuracy', '--by', 'model'], 3], [['review', 'list', '--limit', '6'], 6], [['label', 'list'], 4],
    ];
    for (const [args, n] of commands) {
      const out = (format?: string): string => {
        const r = cli([...args, '--db', db, ...(format ? ['--format', format] : [])]);
        expect(r.code, `${args.join(' ')} ${format}: ${r.stderr}`).toBe(0);
        return r.stdout;
      };
      const json = jsonLines<Record<string, unknown>>(out('json'));
      expect(json, args.join(' ')).toHaveLength(n);
      const [header, ...cells] = parseCsv(out('csv'));
      expect(cells, args.join(' ')).toHaveLength(n);
      for (const [i, row] of cells.entries()) {
        expect(row, args.join(' ')).toEqual(header.map((f) => (json[i][f] === null || json[i][f] === undefined ? '' : String(json[i][f]))));
      }
      const table = out().trimEnd().split('\n');
      expect(out('table')).toBe(`${table.join('\n')}\n`);
      expect(table, args.join(' ')).toHaveLength(n + 1); // a header, then a line per row
      const md = out('md').trimEnd().split('\n');
      expect(md, args.join(' ')).toHaveLength(n + 2);
      expect(md.map((l) => l.split(/(?<!\\)\|/).length - 2), args.join(' ')).toEqual(md.map(() => table[0].trim().split(/ {2,}/).length));
    }
    // the queue, oldest first: the labelled flags (seq 5, 9) carry their label, and --unlabelled leaves them out
    const queue = jsonLines<{ seq: number; label: string | null }>(cli(['review', 'list', '--limit', '3', '--db', db, '--format', 'json']).stdout);
    expect(queue.map((q) => [q.seq, q.label])).toEqual([[5, 'abnormal'], [9, 'normal'], [13, null]]);
    const unlabelled = cli(['review', 'list', '--unlabelled', '--limit', '2', '--db', db]).stdout.trimEnd().split('\n');
    expect(unlabelled[0].trim().split(/\s+/)).toEqual(['seq', 'scored_at', 'verdict', 'reason', 'p_abnormal', 'bundle', 'part', 'label', 'file']);
    expect(unlabelled.slice(1)).toEqual([expect.stringMatching(/^ +13 +\S+ +flag +anomaly +0\.9000 +B1 +P-12 +- +\/c\/cap-12\.tif$/), expect.stringMatching(/^ +17 /)]);
    const labels = cli(['label', 'list', '--db', db]).stdout.trimEnd().split('\n');
    expect(labels[0].trim().split(/\s+/)).toEqual(['labelled_at', 'seq', 'verdict', 'label', 'by', 'source', 'note', 'file']);
    expect(labels[1]).toMatch(/^\S+ +9 +flag +normal +qe +test +dust, "not" a defect +\/c\/cap-8\.tif$/); // newest first
  });

  it('--json stays as the alias of --format json where a command had it', () => {
    expect(cli(['audit', 'list', '--db', db, '--limit', '2', '--json']).stdout).toBe(cli(['audit', 'list', '--db', db, '--limit', '2', '--format', 'json']).stdout);
    expect(cli(['audit', 'summary', '--db', db, '--json']).stdout).toBe(cli(['audit', 'summary', '--db', db, '--format', 'json']).stdout);
    const bad = cli(['review', 'list', '--db', db, '--format', 'xml']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/expected one of table, json, csv, md/);
  });
});

describe('xray-qc audit accuracy: one number format; coverage of what was counted', () => {
  let db: string;
  beforeAll(() => {
    db = join(tempDir(), 'accuracy.db');
    const d = openDatabase(db);
    const store = new Store(d);
    // [bundle, verdict, reason, label]: B1 has each confusion cell, two uncertain flags and an error
    const rows: Array<[string, 'pass' | 'flag' | 'error', string, 'normal' | 'abnormal' | null]> = [
      ['B1', 'flag', 'anomaly', 'abnormal'], ['B1', 'flag', 'uncertain', 'normal'], ['B1', 'flag', 'uncertain', null], ['B1', 'pass', 'normal', 'normal'],
      ['B1', 'pass', 'normal', null], ['B1', 'pass', 'normal', 'abnormal'], ['B1', 'error', 'TIFF_TRUNCATED', null],
      ['B2', 'flag', 'anomaly', 'normal'], ['B2', 'pass', 'normal', null],
    ];
    for (const [i, [bundle, verdict, reason, label]] of rows.entries()) {
      const { id } = store.record({ ...row(i + 1), bundle, verdict, reason, error_code: verdict === 'error' ? reason : null, p_abnormal: verdict === 'error' ? null : 0.5 } as AuditRecord, 't');
      if (label) setLabel(d, { ref: id, label, source: 'test' });
    }
    d.close();
  });
  const run = (...args: string[]): string => {
    const r = cli(['audit', 'accuracy', '--by', 'bundle', '--db', db, ...args]);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };

  it('json: counts and rates as fractions 0–1; coverage is labelled / verdicts counted, with and without the uncertains', () => {
    const pick = (text: string): unknown[][] => jsonLines<Record<string, number | null>>(text)
      .map((r) => [r.group, r.n, r.errors, r.uncertain_excluded, r.labelled, r.tp, r.fp, r.tn, r.fn, r.tpr, r.tnr, r.balanced_accuracy, r.label_coverage, r.review_backlog]);
    expect(pick(run('--format', 'json'))).toEqual([
      ['B1', 7, 1, 0, 4, 1, 1, 1, 1, 0.5, 0.5, 0.5, 4 / 6, 1],
      ['B2', 2, 0, 0, 1, 0, 1, 0, 0, null, 0, 0, 0.5, 0],
      ['Overall', 9, 1, 0, 5, 1, 2, 1, 1, 0.5, 1 / 3, (0.5 + 1 / 3) / 2, 5 / 8, 1],
    ]);
    // the uncertains left out of the counts are left out of the coverage too (it was 4 / 6 and 5 / 8 here);
    // the backlog still holds the unlabelled uncertain flag: it waits for a human either way
    expect(pick(run('--format', 'json', '--uncertain', 'exclude'))).toEqual([
      ['B1', 7, 1, 2, 3, 1, 0, 1, 1, 0.5, 1, 0.75, 3 / 4, 1],
      ['B2', 2, 0, 0, 1, 0, 1, 0, 0, null, 0, 0, 0.5, 0],
      ['Overall', 9, 1, 2, 4, 1, 1, 1, 1, 0.5, 0.5, 0.5, 4 / 6, 1],
    ]);
  });

  it('table and md: counts as integers, every rate a percentage with one decimal; the excluded column with --uncertain exclude', () => {
    const words = (text: string): string[][] => text.trimEnd().split('\n').map((l) => l.trim().split(/ {2,}/));
    expect(words(run())).toEqual([
      ['group', 'n', 'labelled', 'TP', 'FP', 'TN', 'FN', 'TPR %', 'TNR %', 'BA %', 'errors', 'coverage %', 'backlog'],
      ['B1', '7', '4', '1', '1', '1', '1', '50.0', '50.0', '50.0', '1', '66.7', '1'],
      ['B2', '2', '1', '0', '1', '0', '0', '-', '0.0', '0.0', '0', '50.0', '0'],
      ['Overall', '9', '5', '1', '2', '1', '1', '50.0', '33.3', '41.7', '1', '62.5', '1'],
    ]);
    const table = run('--uncertain', 'exclude').trimEnd().split('\n');
    expect(new Set(table.map((l) => l.length)).size).toBe(1); // aligned: numbers right, so every line is as long
    expect(words(table.join('\n')).map((w) => w.slice(7, 12))).toEqual([
      ['TPR %', 'TNR %', 'BA %', 'errors', 'excluded'], ['50.0', '100.0', '75.0', '1', '2'], ['-', '0.0', '0.0', '0', '0'], ['50.0', '50.0', '50.0', '1', '2'],
    ]);
    expect(words(table.join('\n')).map((w) => w[12])).toEqual(['coverage %', '75.0', '50.0', '66.7']);
    expect(run('--format', 'md').split('\n').slice(0, 3)).toEqual([
      '| group | n | labelled | TP | FP | TN | FN | TPR % | TNR % | BA % | errors | coverage % | backlog |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      '| B1 | 7 | 4 | 1 | 1 | 1 | 1 | 50.0 | 50.0 | 50.0 | 1 | 66.7 | 1 |',
    ]);
  });

  it('csv: the json fields, unrounded, empty for none', () => {
    const [header, , b2, overall] = parseCsv(run('--format', 'csv'));
    expect(header).toEqual(['group', 'n', 'errors', 'uncertain_excluded', 'labelled', 'tp', 'fp', 'tn', 'fn', 'tpr', 'tnr', 'balanced_accuracy', 'label_coverage', 'review_backlog']);
    expect(b2[header.indexOf('tpr')]).toBe('');
    expect(Number(overall[header.indexOf('balanced_accuracy')])).toBe((0.5 + 1 / 3) / 2);
  });
});
