import { join } from 'node:path';
import Sqlite from '../src/record/sqlite.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/record/database.js';
import type { AuditRecord } from '../src/pipeline/messages.js';
import { Store } from '../src/record/store.js';
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
    expect(header.trim().split(/\s+/)).toEqual(['seq', 'scored_at', 'VERD', 'reason', 'p_abn', 'model', 'file']);
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatch(/^ +5000 +\S+ +PASS +normal +0\.1000 +m v2 +\/c\/cap-4999\.tif$/);
    const csv = cli(['audit', 'export', '--db', db, '--since', '2026-11-24T00:00:00Z']);
    expect(csv.code, csv.stderr).toBe(0);
    expect(csv.stdout.split('\n')[0]).toMatch(/^seq,id,station_id,file_path,/);
    const missing = join(tempDir(), 'nope.db');
    const m = cli(['audit', 'list', '--db', missing]);
    expect(m.code).toBe(1);
    expect(m.stderr).toBe(`xray-qc: ${missing}: no such audit database\n`);
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
    expect(cli(['audit', 'show', '--db', db, 'nope']).code).toBe(1);
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
});
