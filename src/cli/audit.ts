import type { Command } from 'commander';
import { displayName } from '../capture/names.js';
import { exportInspections, listInspections, showInspection, summary, type Filter, type GroupBy, type InspectionRow } from '../audit/queries.js';
import type { Db } from '../record/database.js';
import { csvCell, iso, openDb, type DbOptions } from './db.js';
import { parseChoice, parseNumber } from './options.js';
import { registerAccuracy } from './quality.js';

function filter(o: { since?: string; until?: string; verdict?: Filter['verdict'] }): Filter {
  return { since: o.since ? iso(o.since) : undefined, until: o.until ? iso(o.until) : undefined, verdict: o.verdict };
}

const CSV_COLUMNS = [
  'seq', 'id', 'station_id', 'file_path', 'file_sha256', 'file_bytes', 'width', 'height', 'captured_at', 'scored_at', 'verdict',
  'reason', 'p_abnormal', 'threshold', 'model_name', 'model_version', 'model_sha256', 'bundle_sha256', 'conversion', 'bounds_min', 'bounds_max',
  'local_min', 'local_max', 'decode_ms', 'preprocess_ms', 'infer_ms', 'total_ms', 'error_code', 'error_message', 'published_at', 'bundle',
  'part_id',
];

function withDb(o: DbOptions, f: (db: Db) => void): void {
  const db = openDb(o);
  try {
    f(db);
  } finally {
    db.close();
  }
}

const LIST_HEADER = `${'seq'.padStart(6)}  ${'scored_at'.padEnd(24)}  ${'VERD'.padEnd(5)} ${'reason'.padEnd(22)} ${'p_abn'.padStart(6)}  ${'model'.padEnd(28)}  file`;

function line(r: InspectionRow): string {
  const p = r.p_abnormal === null ? '     -' : Number(r.p_abnormal).toFixed(4);
  const model = `${r.model_name} v${r.model_version}`;
  return `${String(r.seq).padStart(6)}  ${String(r.scored_at).padEnd(24)}  ${String(r.verdict).toUpperCase().padEnd(5)} ${String(r.reason).padEnd(22)} ${p.padStart(6)}  ${model.padEnd(28)}  ${displayName(String(r.file_path))}`;
}

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('read-only queries on the audit database (safe while the daemon runs)');
  const sub = (name: string): Command => audit.command(name)
    .option('--config <file>', 'station configuration (for database.path)', 'config.yaml')
    .option('--db <file>', 'the audit database (overrides --config)');
  const dbOpts = (cmd: Command): DbOptions => cmd.opts<DbOptions>();

  sub('list').description('inspections, newest first')
    .option('--since <iso>').option('--until <iso>')
    .option('--verdict <v>', 'pass|flag|error', parseChoice(['pass', 'flag', 'error'] as const))
    .option('--limit <n>', 'at most n rows', parseNumber(1, 1e7, true), 50)
    .option('--json', 'one JSON object per line')
    .action(function (this: Command, o: { since?: string; until?: string; verdict?: Filter['verdict']; limit: number; json?: boolean }) {
      withDb(dbOpts(this), (db) => {
        if (!o.json) process.stdout.write(`${LIST_HEADER}\n`);
        for (const r of listInspections(db, filter(o), o.limit)) process.stdout.write(`${o.json ? JSON.stringify(r) : line(r)}\n`);
      });
    });

  sub('show').description('one inspection, by id or seq').argument('<id>')
    .action(function (this: Command, id: string) {
      withDb(dbOpts(this), (db) => {
        const r = showInspection(db, id);
        if (!r) {
          process.stderr.write(`no inspection ${id}\n`);
          process.exitCode = 1;
          return;
        }
        process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      });
    });

  sub('summary').description('counts per verdict, flag rate, latency p50/p95')
    .option('--since <iso>').option('--until <iso>')
    .option('--by <group>', 'hour|day|model', parseChoice(['hour', 'day', 'model'] as const))
    .option('--json', 'JSON lines')
    .action(function (this: Command, o: { since?: string; until?: string; by?: GroupBy; json?: boolean }) {
      withDb(dbOpts(this), (db) => {
        const rows = summary(db, filter(o), o.by ?? 'all');
        if (o.json) {
          for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
          return;
        }
        process.stdout.write(`${'group'.padEnd(28)} ${'total'.padStart(7)} ${'pass'.padStart(7)} ${'flag'.padStart(7)} ${'error'.padStart(7)}  flag rate  p50 ms  p95 ms\n`);
        for (const r of rows) {
          const rate = r.flag_rate === null ? '-' : `${(100 * r.flag_rate).toFixed(1)} %`;
          const ms = (v: number | null): string => (v === null ? '-' : v.toFixed(0));
          process.stdout.write(`${r.group.padEnd(28)} ${String(r.total).padStart(7)} ${String(r.pass).padStart(7)} ${String(r.flag).padStart(7)} ${String(r.error).padStart(7)}  ${rate.padStart(9)}  ${ms(r.latency_p50_ms).padStart(6)}  ${ms(r.latency_p95_ms).padStart(6)}\n`);
        }
      });
    });

  registerAccuracy(sub, dbOpts);

  sub('export').description('every inspection, oldest first')
    .option('--format <f>', 'csv|jsonl', parseChoice(['csv', 'jsonl'] as const), 'csv')
    .option('--since <iso>').option('--until <iso>')
    .action(async function (this: Command, o: { format: 'csv' | 'jsonl'; since?: string; until?: string }) {
      const db = openDb(dbOpts(this));
      try {
        if (o.format === 'csv') process.stdout.write(`${CSV_COLUMNS.join(',')}\n`);
        for (const r of exportInspections(db, filter(o))) {
          const text = o.format === 'csv' ? `${CSV_COLUMNS.map((c) => csvCell(r[c])).join(',')}\n` : `${JSON.stringify(r)}\n`;
          // Respect back-pressure: millions of rows must not pile up in memory.
          if (!process.stdout.write(text)) await new Promise((resolve) => process.stdout.once('drain', resolve));
        }
      } finally {
        db.close();
      }
    });
}
