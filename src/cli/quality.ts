import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { Command } from 'commander';
import pg from 'pg';
import { accuracy, reviewList, type AccuracyGroup, type AccuracyRow, type ReviewRow } from '../audit/accuracy.js';
import { driftReport, type DriftRow } from '../audit/drift.js';
import { displayName } from '../capture/names.js';
import { XrayError } from '../errors.js';
import { openDatabase, type Db } from '../record/database.js';
import { importLabels, listLabels, parseCsv, setLabel, type LabelRow } from '../record/labels.js';
import { plantAccuracy, type PlantGroup } from '../plant/accuracy.js';
import { loadConfig } from '../service/config.js';
import { iso, openDb, type DbOptions } from './db.js';
import { formatOption, show, writeRows, type Column, type Format, type View } from './format.js';
import { addReviewServe } from './review.js';
import { parseChoice, parseNumber } from './options.js';

/** The quality loop's commands: `audit accuracy`, `review list`, `label set|import|list` (docs/quality.md). */

const ACCURACY_FIELDS: Array<keyof AccuracyRow> = ['group', 'n', 'errors', 'uncertain_excluded', 'labelled', 'tp', 'fp', 'tn', 'fn', 'tpr', 'tnr', 'balanced_accuracy', 'label_coverage', 'review_backlog'];

/** The accuracy table: counts as integers, rates as % with one decimal; `excluded` only when uncertains are. */
function accuracyView(uncertain: 'flag' | 'exclude'): View<AccuracyRow> {
  const n = (head: string, k: keyof AccuracyRow): Column<AccuracyRow> => ({ head, right: true, text: (r) => show.count(r[k] as number) });
  const pct = (head: string, k: keyof AccuracyRow): Column<AccuracyRow> => ({ head, right: true, text: (r) => show.pct(r[k] as number | null) });
  return {
    fields: ACCURACY_FIELDS,
    columns: [{ head: 'group', text: (r) => r.group }, n('n', 'n'), n('labelled', 'labelled'), n('TP', 'tp'), n('FP', 'fp'), n('TN', 'tn'), n('FN', 'fn'),
      pct('TPR %', 'tpr'), pct('TNR %', 'tnr'), pct('BA %', 'balanced_accuracy'), n('errors', 'errors'),
      ...(uncertain === 'exclude' ? [n('excluded', 'uncertain_excluded')] : []), pct('coverage %', 'label_coverage'), n('backlog', 'review_backlog')],
  };
}

function driftView(psi: boolean): View<DriftRow> {
  const fields: Array<keyof DriftRow> = ['group', 'n', 'mean_clip_low', 'mean_clip_high', 'mean_p50', 'min_p0_01', 'max_p99_99', 'bounds', 'flag_rate'];
  const num = (head: string, text: (r: DriftRow) => string): Column<DriftRow> => ({ head, right: true, text });
  return {
    fields: psi ? [...fields, 'psi', 'psi_rule'] : fields,
    columns: [{ head: 'group', text: (r) => r.group }, num('n', (r) => show.count(r.n)), num('clip low %', (r) => show.pct(r.mean_clip_low)), num('clip high %', (r) => show.pct(r.mean_clip_high)),
      num('p50', (r) => show.fixed(1)(r.mean_p50)), num('min p0.01', (r) => show.fixed(1)(r.min_p0_01)), num('max p99.99', (r) => show.fixed(1)(r.max_p99_99)),
      { head: 'bounds', text: (r) => show.text(r.bounds) }, num('flag %', (r) => show.pct(r.flag_rate)),
      ...(psi ? [num('PSI', (r) => show.fixed(3)(r.psi)), { head: 'PSI says', text: (r: DriftRow) => show.text(r.psi_rule) }] : [])],
  };
}

const REVIEW_VIEW: View<ReviewRow> = {
  fields: ['seq', 'id', 'scored_at', 'file_path', 'bundle', 'part_id', 'verdict', 'reason', 'p_abnormal', 'label'],
  columns: [{ head: 'seq', right: true, text: (r) => show.count(r.seq) }, { head: 'scored_at', text: (r) => r.scored_at }, { head: 'verdict', text: (r) => r.verdict },
    { head: 'reason', text: (r) => r.reason }, { head: 'p_abnormal', right: true, text: (r) => show.score(r.p_abnormal) }, { head: 'bundle', text: (r) => show.text(r.bundle) },
    { head: 'part', text: (r) => show.text(r.part_id) }, { head: 'label', text: (r) => show.text(r.label) }, { head: 'file', text: (r) => displayName(r.file_path) }],
};

const LABEL_VIEW: View<LabelRow> = {
  fields: ['id', 'inspection_id', 'seq', 'file_path', 'verdict', 'label', 'labelled_by', 'note', 'source', 'labelled_at'],
  columns: [{ head: 'labelled_at', text: (r) => r.labelled_at }, { head: 'seq', right: true, text: (r) => show.count(r.seq) }, { head: 'verdict', text: (r) => r.verdict },
    { head: 'label', text: (r) => r.label }, { head: 'by', text: (r) => show.text(r.labelled_by) }, { head: 'source', text: (r) => r.source },
    { head: 'note', text: (r) => show.text(r.note) }, { head: 'file', text: (r) => displayName(r.file_path) }],
};

export function registerAccuracy(sub: (name: string) => Command, dbOpts: (cmd: Command) => DbOptions): void {
  formatOption(sub('drift').description("what the conversion saw per day or bundle (clipped fractions, percentiles) beside the model's bounds"))
    .option('--by <group>', 'day|bundle', parseChoice(['day', 'bundle'] as const), 'day')
    .option('--since <iso>').option('--until <iso>')
    .option('--bundle <dir>', "a bundle whose oof- or train-predictions.csv is the scores' reference (adds the PSI per group)")
    .action(async function (this: Command, o: { by: 'day' | 'bundle'; since?: string; until?: string; bundle?: string; format: Format }) {
      const reference = o.bundle ? await trainingScores(o.bundle) : undefined;
      const db = openDb(dbOpts(this));
      try {
        writeRows(driftReport(db, { by: o.by, since: o.since ? iso(o.since) : undefined, until: o.until ? iso(o.until) : undefined, reference }), o.format, driftView(!!reference));
      } finally {
        db.close();
      }
    });

  formatOption(sub('accuracy').description("balanced accuracy of the labelled verdicts per group, and pooled (the paper's Table 1 rules)")
    .option('--by <group>', 'bundle|model|day|week|month (with --pg also station|station-bundle)', parseChoice(['bundle', 'model', 'day', 'week', 'month', 'station', 'station-bundle'] as const), 'bundle')
    .option('--since <iso>').option('--until <iso>')
    .option('--model <name[:version]>', 'only this model')
    .option('--uncertain <how>', 'flag (an uncertain verdict counts as abnormal predicted) | exclude', parseChoice(['flag', 'exclude'] as const), 'flag'))
    .option('--pg <env>', "the plant database instead: the environment variable holding its URL (docs/plant.md)")
    .option('--station <id>', 'with --pg: only this station')
    .action(async function (this: Command, o: { by: AccuracyGroup | PlantGroup; since?: string; until?: string; model?: string; uncertain: 'flag' | 'exclude'; format: Format; pg?: string; station?: string }) {
      const range = { since: o.since ? iso(o.since) : undefined, until: o.until ? iso(o.until) : undefined };
      if (o.pg) {
        const url = process.env[o.pg];
        if (!url) throw new XrayError('CONFIG_INVALID', `--pg ${o.pg}: environment variable ${o.pg} is not set (postgres://user:password@host/db)`);
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          writeRows(await plantAccuracy(client, { ...o, ...range, by: o.by as PlantGroup }), o.format, accuracyView(o.uncertain));
        } finally {
          await client.end();
        }
        return;
      }
      if (o.by === 'station' || o.by === 'station-bundle') throw new XrayError('CONFIG_INVALID', `--by ${o.by} needs --pg (one station's database has one station)`);
      const db = openDb(dbOpts(this));
      try {
        writeRows(accuracy(db, { ...o, ...range, by: o.by as AccuracyGroup }), o.format, accuracyView(o.uncertain));
      } finally {
        db.close();
      }
    });
}

/** p_abnormal of a bundle's out-of-fold (else training) predictions, as `xray-qc train` writes them. */
async function trainingScores(dir: string): Promise<number[]> {
  for (const name of ['oof-predictions.csv', 'train-predictions.csv']) {
    const text = await readFile(join(dir, name), 'utf8').catch(() => null);
    if (text === null) continue;
    const [header, ...rows] = parseCsv(text);
    const col = header.indexOf('p_abnormal');
    if (col < 0) throw new Error(`${join(dir, name)}: no p_abnormal column`);
    // out-of-fold predictions hold one row per conversion method: the bundle's own
    const method = header.indexOf('method');
    const conversion = method < 0 ? null : (JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { preprocess: { conversion: string } }).preprocess.conversion;
    return rows.filter((r) => method < 0 || r[method] === conversion).map((r) => Number(r[col])).filter(Number.isFinite);
  }
  throw new Error(`${dir}: no oof-predictions.csv or train-predictions.csv to compare the scores with`);
}

function writableDb(o: DbOptions): Db {
  return openDatabase(o.db ?? loadConfig(o.config).database.path);
}

/** LABEL_INVALID is the user's input: one line, exit 2. */
function labelAction<A extends unknown[]>(f: (this: Command, ...args: A) => void): (this: Command, ...args: A) => void {
  return function (this: Command, ...args: A) {
    try {
      f.apply(this, args);
    } catch (err) {
      if (!(err instanceof XrayError && err.code === 'LABEL_INVALID')) throw err;
      process.stderr.write(`xray-qc label: ${err.code}: ${err.message}\n`);
      process.exitCode = 2;
    }
  };
}

export function registerQuality(program: Command): void {
  const withDb = (cmd: Command): Command => cmd.option('--config <file>', 'station configuration (for database.path)', 'config.yaml').option('--db <file>', 'the audit database (overrides --config)');
  const label = program.command('label').description("operators' labels of inspected parts (append-only; an inspection's label is its latest)");
  withDb(label.command('set').description('label one inspection: REF is an inspection id, seq:N or file:PATH (its latest inspection)'))
    .argument('<ref>').argument('<label>', 'normal|abnormal')
    .option('--by <name>', 'who decided').option('--note <text>', 'what was found')
    .action(labelAction(function (this: Command, ref: string, value: string, o: { by?: string; note?: string }) {
      const db = writableDb(this.opts<DbOptions>());
      try {
        const r = setLabel(db, { ref, label: value, by: o.by, note: o.note, source: 'cli' });
        process.stdout.write(`${JSON.stringify({ inspection: r.inspection, label: value, added: r.added })}\n`);
      } finally {
        db.close();
      }
    }));
  withDb(label.command('import').description('labels from a CSV (columns id or file, label; optional by, note, labelled_at); all or nothing; importing it again changes nothing'))
    .argument('<file.csv>')
    .action(labelAction(function (this: Command, file: string) {
      const db = writableDb(this.opts<DbOptions>());
      try {
        let text: string;
        try {
          text = readFileSync(file, 'utf8');
        } catch (err) {
          throw new XrayError('LABEL_INVALID', `${file}: ${(err as Error).message}`);
        }
        const r = importLabels(db, text, `import:${basename(resolve(file))}`);
        process.stdout.write(`${JSON.stringify({ file, ...r })}\n`);
      } finally {
        db.close();
      }
    }));
  formatOption(withDb(label.command('list').description('the latest labels, newest first')))
    .option('--limit <n>', 'at most n rows', parseNumber(1, 1e7, true), 50)
    .action(function (this: Command, o: { limit: number; format: Format }) {
      const db = openDb(this.opts<DbOptions>());
      try {
        writeRows(listLabels(db, o.limit), o.format, LABEL_VIEW);
      } finally {
        db.close();
      }
    });
  const review = program.command('review').description('what waits for a human, and the review page');
  addReviewServe(review);
  formatOption(withDb(review.command('list').description('flags and uncertain verdicts (or --verdict), oldest first')))
    .option('--unlabelled', 'only those without a label')
    .option('--verdict <v>', 'flag|uncertain|pass', parseChoice(['flag', 'uncertain', 'pass'] as const))
    .option('--limit <n>', 'at most n rows', parseNumber(1, 1e7, true), 50)
    .action(function (this: Command, o: { unlabelled?: boolean; verdict?: 'flag' | 'uncertain' | 'pass'; limit: number; format: Format }) {
      const db = openDb(this.opts<DbOptions>());
      try {
        writeRows(reviewList(db, { unlabelled: !!o.unlabelled, verdict: o.verdict, limit: o.limit }), o.format, REVIEW_VIEW);
      } finally {
        db.close();
      }
    });
}
