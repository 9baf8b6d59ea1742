import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { listInspections, summary } from '../audit/queries.js';
import { CaptureWatcher } from '../capture/watcher.js';
import { openDatabase, openDatabaseReadOnly } from '../record/database.js';
import type { AuditRecord } from '../pipeline/messages.js';
import { Store } from '../record/store.js';
import { accuracy, accuracyByScan } from '../audit/accuracy.js';

/**
 * `npm run bench:audit`: the audit queries at 1,000,000 inspection rows, and the start-up
 * reconcile of a 10,000-file backlog (listed, deduplicated against the database, queued) without
 * reading any image.
 */

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function row(i: number, t0: number): AuditRecord {
  const verdict = i % 50 === 0 ? 'error' : i % 5 === 0 ? 'flag' : 'pass';
  const at = new Date(t0 + i * 3000).toISOString(); // one capture every 3 s: ~35 days
  const ok = verdict !== 'error';
  return {
    station_id: 'xray-1', file_path: `/srv/captures/${i}.tif`, file_sha256: i.toString(16).padStart(64, '0'), file_bytes: 4_700_000, file_mtime_ms: i,
    width: 1145, height: 2072, captured_at: at, scored_at: at, verdict, reason: ok ? (verdict === 'flag' ? 'anomaly' : 'normal') : 'TIFF_TRUNCATED',
    p_abnormal: ok ? (i % 1000) / 1000 : null, threshold: 0.5, model_name: 'electrode-resnet34', model_version: 1 + Math.floor(i / 250_000), model_sha256: 'ab'.repeat(32), bundle_sha256: 'cd'.repeat(32),
    conversion: 'global', bounds_min: 1700, bounds_max: 2800, local_min: null, local_max: null, decode_ms: 20, preprocess_ms: 22, infer_ms: 1400,
    total_ms: ok ? 1400 + (i % 300) : null, error_code: ok ? null : 'TIFF_TRUNCATED', error_message: ok ? null : 'cut short', bundle: `B${Math.floor(i / 500)}`, part_id: `P-${i}`, clip_low: 0, clip_high: 0, p0_01: 1700, p50: 2200, p99_99: 2700,
  };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'xray-qc-bench-audit-'));
  const dbPath = join(dir, 'audit.db');
  const N = Number(process.argv[2]) || 1_000_000;
  const t0 = Date.UTC(2026, 9, 20);
  let t = performance.now();
  const db = openDatabase(dbPath);
  const store = new Store(db);
  db.pragma('synchronous = OFF'); // filling only
  for (let start = 0; start < N; start += 50_000) {
    db.transaction(() => { for (let i = start; i < Math.min(N, start + 50_000); i++) store.record(row(i, t0), 'x/verdict'); })();
  }
  db.exec('DELETE FROM outbox');
  // 100,000 labels: every 10th inspection, a tenth of them corrected once more
  db.transaction(() => {
    const ids = db.prepare('SELECT id, verdict FROM inspections WHERE seq % 10 = 0').all() as Array<{ id: string; verdict: string }>;
    const add = db.prepare("INSERT INTO labels (inspection_id, label, labelled_by, note, source, labelled_at, recorded_at) VALUES (?, ?, 'qe', NULL, 'bench', ?, ?)");
    const at = new Date().toISOString();
    ids.forEach((r, k) => {
      add.run(r.id, k % 7 === 0 ? 'abnormal' : 'normal', at, at);
      if (k % 10 === 0) add.run(r.id, 'abnormal', at, at);
    });
  })();
  db.close();
  console.log(`filled ${N} rows in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const ro = openDatabaseReadOnly(dbPath);
  const lastDay = new Date(t0 + (N - 1) * 3000 - 86_400_000).toISOString();
  const time = (f: () => unknown): number => {
    const ms: number[] = [];
    for (let i = 0; i < 7; i++) { const a = performance.now(); f(); ms.push(performance.now() - a); }
    return median(ms);
  };
  console.log('| query (1,000,000 rows) | median ms |\n|---|---|');
  console.log(`| audit summary --since <one day> | ${time(() => summary(ro, { since: lastDay })).toFixed(1)} |`);
  console.log(`| audit summary --since <one day> --by hour | ${time(() => summary(ro, { since: lastDay }, 'hour')).toFixed(1)} |`);
  console.log(`| audit list --verdict flag --limit 100 | ${time(() => listInspections(ro, { verdict: 'flag' }, 100)).toFixed(1)} |`);
  const lastMonth = new Date(t0 + (N - 1) * 3000 - 30 * 86_400_000).toISOString();
  const labels = (ro.prepare('SELECT count(*) AS n FROM labels').get() as { n: number }).n;
  console.log(`| audit accuracy --by bundle --since <30 days> (${labels} labels) | ${time(() => accuracy(ro, { by: 'bundle', since: lastMonth, uncertain: 'flag' })).toFixed(1)} |`);
  console.log(`| audit accuracy --by day --since <30 days> | ${time(() => accuracy(ro, { by: 'day', since: lastMonth, uncertain: 'flag' })).toFixed(1)} |`);
  const midnight = `${lastMonth.slice(0, 10)}T00:00:00.000Z`; // `--since 2026-10-25`: whole days only
  console.log(`| audit accuracy --by bundle --since <30 days, from midnight> | ${time(() => accuracy(ro, { by: 'bundle', since: midnight, uncertain: 'flag' })).toFixed(1)} |`);
  console.log(`| audit accuracy --by bundle, every inspection scanned (schema 4, or no counts) | ${time(() => accuracyByScan(ro, { by: 'bundle', since: lastMonth, uncertain: 'flag' })).toFixed(1)} |`);
  ro.close();

  // 10,000 files waiting at start, 5,000 of them already audited
  const captures = join(dir, 'captures');
  await mkdir(captures);
  const db2 = openDatabase(join(dir, 'station.db'));
  const s2 = new Store(db2);
  const files = 10_000;
  for (let i = 0; i < files; i++) await writeFile(join(captures, `c-${i}.tif`), Buffer.alloc(64));
  const watcher = new CaptureWatcher({ dir: captures, patterns: ['**/*.tif'], ignore: [], settleMs: 0, poll: false, logger: pino({ level: 'silent' }), onSettled: (f) => s2.enqueue({ file_path: f.path, file_bytes: f.size, file_mtime_ms: f.mtimeMs }) });
  const { statSync } = await import('node:fs');
  db2.transaction(() => { for (let i = 0; i < files; i += 2) { const p = join(captures, `c-${i}.tif`); const st = statSync(p); s2.record({ ...row(i, t0), file_path: p, file_bytes: st.size, file_mtime_ms: st.mtimeMs }, 'x'); } })();
  const rss0 = process.memoryUsage().rss;
  t = performance.now();
  const found = await watcher.reconcile((f) => s2.auditedByStat(f.path, f.size, f.mtimeMs) || s2.isQueued(f.path));
  while (s2.queueCount() < found) await new Promise((r) => setTimeout(r, 5));
  const ms = performance.now() - t;
  console.log(`\nbacklog: ${files} files, ${files / 2} already audited → ${found} queued in ${ms.toFixed(0)} ms; RSS ${(rss0 / 2 ** 20).toFixed(0)} → ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
  db2.close();
  await rm(dir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
