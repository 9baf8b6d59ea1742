import type { Command } from 'commander';
import { displayName } from '../capture/names.js';
import { exportInspections, listInspections, showInspection, summary, type Filter, type GroupBy, type InspectionRow, type SummaryRow } from '../audit/queries.js';
import type { Db } from '../record/database.js';
import { csvCell, iso, openDb, type DbOptions } from './db.js';
import { formatOf, formatOption, show, writeRows, type Format, type View } from './format.js';
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

const LIST_VIEW: View<InspectionRow> = {
  fields: CSV_COLUMNS,
  columns: [{ head: 'seq', right: true, text: (r) => show.count(r.seq as number) }, { head: 'scored_at', text: (r) => String(r.scored_at) },
    { head: 'verdict', text: (r) => String(r.verdict) }, { head: 'reason', text: (r) => String(r.reason) },
    { head: 'p_abnormal', right: true, text: (r) => show.score(r.p_abnormal as number | null) },
    { head: 'model', text: (r) => (r.model_name === null ? '-' : `${r.model_name} v${r.model_version}`) }, { head: 'file', text: (r) => displayName(String(r.file_path)) }],
};

const SUMMARY_VIEW: View<SummaryRow> = {
  fields: ['group', 'total', 'pass', 'flag', 'error', 'flag_rate', 'latency_p50_ms', 'latency_p95_ms'],
  columns: [{ head: 'group', text: (r) => r.group }, ...(['total', 'pass', 'flag', 'error'] as const).map((k) => ({ head: k, right: true, text: (r: SummaryRow) => show.count(r[k]) })),
    { head: 'flag %', right: true, text: (r) => show.pct(r.flag_rate) }, { head: 'p50 ms', right: true, text: (r) => show.ms(r.latency_p50_ms) },
    { head: 'p95 ms', right: true, text: (r) => show.ms(r.latency_p95_ms) }],
};

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('read-only queries on the audit database (safe while the daemon runs)');
  const sub = (name: string): Command => audit.command(name)
    .option('--config <file>', 'station configuration (for database.path)', 'config.yaml')
    .option('--db <file>', 'the audit database (overrides --config)');
  const dbOpts = (cmd: Command): DbOptions => cmd.opts<DbOptions>();

  formatOption(sub('list').description('inspections, newest first'), true)
    .option('--since <iso>').option('--until <iso>')
    .option('--verdict <v>', 'pass|flag|error', parseChoice(['pass', 'flag', 'error'] as const))
    .option('--limit <n>', 'at most n rows', parseNumber(1, 1e7, true), 50)
    .action(function (this: Command, o: { since?: string; until?: string; verdict?: Filter['verdict']; limit: number; format: Format; json?: boolean }) {
      withDb(dbOpts(this), (db) => writeRows(listInspections(db, filter(o), o.limit), formatOf(o), LIST_VIEW));
    });

  sub('show').description('one inspection, by id or seq').argument('<id>')
    .action(function (this: Command, id: string) {
      withDb(dbOpts(this), (db) => {
        const r = showInspection(db, id);
        if (!r) {
          process.stderr.write(`xray-qc audit show: USAGE_INVALID: no inspection ${id} (give an inspection id or seq)\n`);
          process.exitCode = 2;
          return;
        }
        process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      });
    });

  formatOption(sub('summary').description('counts per verdict, flag rate, latency p50/p95'), true)
    .option('--since <iso>').option('--until <iso>')
    .option('--by <group>', 'hour|day|model', parseChoice(['hour', 'day', 'model'] as const))
    .action(function (this: Command, o: { since?: string; until?: string; by?: GroupBy; format: Format; json?: boolean }) {
      withDb(dbOpts(this), (db) => writeRows(summary(db, filter(o), o.by ?? 'all'), formatOf(o), SUMMARY_VIEW));
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
