import type { Command } from 'commander';
import pg from 'pg';
import { openDatabaseReadOnly } from '../record/database.js';
import { ConfigError } from '../service/config.js';
import { createLogger } from '../service/logger.js';
import { backfillFromJsonl, backfillFromStation, type BackfillTotals } from '../plant/backfill.js';
import { Collector } from '../plant/collector.js';
import { loadPlantConfig, type PlantConfig } from '../plant/config.js';
import { openGaps } from '../plant/gaps.js';
import { migratePlant } from '../plant/schema.js';
import { parseNumber } from './options.js';

/** `xray-qc collect`: the plant collector and its tools (docs/plant.md). */

function config(path: string): PlantConfig | null {
  try {
    return loadPlantConfig(path);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const line of err.lines) process.stderr.write(`${line}\n`);
    process.exitCode = 2;
    return null;
  }
}

async function withDb<T>(c: PlantConfig, f: (db: pg.Client) => Promise<T>): Promise<T> {
  const db = new pg.Client({ connectionString: c.postgres.url });
  await db.connect();
  try {
    await migratePlant(db);
    return await f(db);
  } finally {
    await db.end();
  }
}

export function registerCollect(program: Command): void {
  const collect = program.command('collect')
    .description("the plant collector: every station's verdicts and labels from the plant broker into PostgreSQL")
    .option('--config <file>', 'plant configuration file', 'plant.yaml')
    .action(async (o: { config: string }) => {
      const c = config(o.config);
      if (!c) return;
      const logger = createLogger();
      const collector = new Collector(c, logger);
      const stats = setInterval(() => logger.info(collector.stats, 'collected'), 60_000);
      const stop = (signal: string): void => {
        clearInterval(stats);
        logger.info({ signal, ...collector.stats }, 'stopping');
        void collector.stop().then(() => process.exit(0));
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      try {
        await collector.start();
      } catch (err) {
        logger.fatal({ err: (err as Error).message }, 'could not start');
        await collector.stop().catch(() => undefined);
        process.exit(1);
      }
      await new Promise<void>(() => undefined);
    });

  collect.command('gaps').description('per-station seq gaps open in the plant database (JSON lines)')
    .option('--config <file>', 'plant configuration file', 'plant.yaml')
    .option('--older-than <s>', 'only gaps open at least this long', parseNumber(0, 1e9), 0)
    .action(async (o: { config: string; olderThan: number }) => {
      const c = config(o.config);
      if (!c) return;
      const gaps = await withDb(c, (db) => openGaps(db, o.olderThan));
      for (const g of gaps) process.stdout.write(`${JSON.stringify(g)}\n`);
      process.stderr.write(`${gaps.length} gap${gaps.length === 1 ? '' : 's'} (${gaps.reduce((a, g) => a + g.missing, 0)} verdicts missing)\n`);
    });

  collect.command('backfill').description("a station's audit rows and labels from its SQLite file (or audit export --format jsonl) into the plant database; idempotent")
    .option('--config <file>', 'plant configuration file', 'plant.yaml')
    .option('--station-db <file>', "the station's audit database (opened read-only)")
    .option('--jsonl <file>', 'the output of xray-qc audit export --format jsonl')
    .option('--batch <n>', 'rows per transaction', parseNumber(1, 100_000, true), 1000)
    .action(async (o: { config: string; stationDb?: string; jsonl?: string; batch: number }) => {
      const c = config(o.config);
      if (!c) return;
      if (!o.stationDb === !o.jsonl) {
        process.stderr.write('collect backfill: give exactly one of --station-db FILE and --jsonl FILE\n');
        process.exitCode = 2;
        return;
      }
      const started = Date.now();
      const progress = (t: BackfillTotals): void => { process.stderr.write(`backfill: ${t.rows} read, ${t.verdicts} verdicts and ${t.labels} labels new, ${t.duplicates} already there\n`); };
      const totals = await withDb(c, async (db) => {
        if (o.jsonl) return backfillFromJsonl(db, o.jsonl, o.batch, progress);
        const station = openDatabaseReadOnly(o.stationDb!);
        try {
          return await backfillFromStation(db, station, o.batch, progress);
        } finally {
          station.close();
        }
      });
      process.stdout.write(`${JSON.stringify({ ...totals, seconds: (Date.now() - started) / 1000 })}\n`);
      if (totals.conflicts || totals.invalid) process.exitCode = 1;
    });
}
