import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Sqlite, { type SqliteDatabase } from '../../src/record/sqlite.js';
import { afterEach } from 'vitest';
import { prng } from '../../src/tools/random.js';
import { encodeTiff16 } from '../../src/tools/tiff-writer.js';
import { synthElectrode } from '../../src/tools/synth.js';
import { ROOT } from '../helpers.js';
import { freePort, makeStation, Mosquitto, sleep } from '../station.js';

/**
 * The fault-injection suite's rig: a real mosquitto, an independent `mosquitto_sub -q 1`, the
 * daemon as a real process, and the counting that every fault ends with — captures without
 * exactly one audit row, verdicts the subscriber never saw, seq order.
 */

/** `XRAY_QC_SOAK=1`: the full figures of docs/reliability.md; unset: the shorter CI part. */
export const SOAK = process.env.XRAY_QC_SOAK === '1';

/** Where each fault's figures go (one JSON line per fault), to be copied into docs/reliability.md. */
export const REPORT = process.env.XRAY_QC_FAULTS_REPORT ?? join(ROOT, 'faults-report.jsonl');

export function report(fault: string, figures: Record<string, unknown>): void {
  const line = { fault, soak: SOAK, at: new Date().toISOString(), ...figures };
  appendFileSync(REPORT, `${JSON.stringify(line)}\n`);
  console.log(`FAULT ${JSON.stringify(line)}`);
}

/** A small electrode capture with unique content per seed. */
export function capture(seed: number, width = 240, height = 440): Buffer {
  const img = synthElectrode(seed, seed % 4 === 0 ? 'scratch' : null, { width, height });
  return encodeTiff16(img.width, img.height, img.data, { compression: seed % 2 ? 'deflate' : 'none' });
}

/** A mosquitto with a config file: persistence (a session survives a restart) or none. */
export function brokerConfig(dir: string, port: number, opts: { persistence?: boolean; lines?: string[] } = {}): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'mosquitto.conf');
  writeFileSync(file, [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'user root', // only when started as root: keeps access to the test's private temp folders
    ...(opts.persistence ? ['persistence true', `persistence_location ${dir}/`, 'autosave_interval 1'] : ['persistence false']),
    ...(opts.lines ?? []),
    '',
  ].join('\n'));
  return file;
}

/** `mosquitto_sub -q 1` with a persistent session: the independent witness of what the line saw. */
export class WitnessSub {
  private proc: ChildProcess | null = null;
  private text = '';
  constructor(private readonly port: number, private readonly topic = 'xray-qc/xray-1/verdict', private readonly clientId = `witness-${process.pid}`) {}

  async start(): Promise<void> {
    this.proc = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(this.port), '-q', '1', '-c', '-i', this.clientId, '-t', this.topic], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.on('data', (d: Buffer) => { this.text += d.toString(); });
    this.proc.stderr!.on('data', () => undefined);
    await sleep(500);
  }

  /** How many verdicts have arrived so far (duplicates included), without parsing them. */
  count(): number {
    let n = 0;
    for (let i = this.text.indexOf('\n{'); i !== -1; i = this.text.indexOf('\n{', i + 1)) n++;
    return n + (this.text.startsWith('{') ? 1 : 0);
  }

  /** Every verdict received so far (duplicates included). */
  verdicts(): Array<{ id: string; seq: number; file: string; verdict: string; reason: string }> {
    return this.text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { id: string; seq: number; file: string; verdict: string; reason: string });
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => { p.once('exit', () => resolve()); p.kill('SIGTERM'); });
  }
}

export interface AuditRow { seq: number; id: string; file_path: string; verdict: string; reason: string; published_at: string | null; scored_at: string; file_sha256: string | null }

/** The audit rows, or none while the database cannot be opened (not created yet, or out of reach). */
export function auditRows(db: string): AuditRow[] {
  let d: SqliteDatabase;
  try {
    d = new Sqlite(db, { readonly: true, fileMustExist: true });
  } catch {
    return [];
  }
  try {
    return d.prepare('SELECT seq, id, file_path, verdict, reason, published_at, scored_at, file_sha256 FROM inspections ORDER BY seq').all() as AuditRow[];
  } catch {
    return [];
  } finally {
    d.close();
  }
}

export interface Loss {
  captures: number;
  rows: number;
  /** Captures with no audit row, or with more than one. */
  not_exactly_one_row: number;
  /** Audit rows whose id the witness never received. */
  verdicts_missing_at_subscriber: number;
  /** Messages the witness received more than once (same id; allowed by QoS 1). */
  duplicate_deliveries: number;
  /** First receptions of a verdict whose seq is lower than one received before it. */
  seq_order_violations: number;
  unpublished_rows: number;
}

/** The count every fault ends with. `files`: the absolute paths of the captures written. */
export function countLoss(db: string, files: string[], witness: WitnessSub): Loss {
  const rows = auditRows(db);
  const perFile = new Map<string, number>();
  for (const r of rows) perFile.set(r.file_path, (perFile.get(r.file_path) ?? 0) + 1);
  const got = witness.verdicts();
  const seen = new Set<string>();
  let duplicates = 0;
  let violations = 0;
  let maxSeq = 0;
  for (const v of got) {
    if (seen.has(v.id)) {
      duplicates++;
      continue;
    }
    seen.add(v.id);
    if (v.seq < maxSeq) violations++;
    maxSeq = Math.max(maxSeq, v.seq);
  }
  return {
    captures: files.length,
    rows: rows.length,
    not_exactly_one_row: files.filter((f) => perFile.get(f) !== 1).length,
    verdicts_missing_at_subscriber: rows.filter((r) => !seen.has(r.id)).length,
    duplicate_deliveries: duplicates,
    seq_order_violations: violations,
    unpublished_rows: rows.filter((r) => r.published_at === null).length,
  };
}

/** At least `n` audit rows, every one published and received by the witness. */
export function delivered(db: string, n: number, witness: WitnessSub): boolean {
  const rows = auditRows(db);
  return rows.length >= n && rows.every((r) => r.published_at !== null) && new Set(witness.verdicts().map((v) => v.id)).size >= rows.length;
}

/** Arrival order broken: entries (in seq order) whose capture arrived before the previous one's. */
export function inversions(order: number[]): number {
  return order.filter((v, i) => i > 0 && v < order[i - 1]).length;
}

/** Resident set size of a process in MiB (Linux /proc), or null when it is gone. */
export function rssMiB(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

export type Cleanup = () => Promise<unknown> | void;

/** A list of clean-ups run (newest first, errors ignored) after each test of the calling file. */
export function cleanupsAfterEach(): Cleanup[] {
  const cleanups: Cleanup[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
  });
  return cleanups;
}

/** An anonymous mosquitto on a free port and the witness subscribed to it, both stopped afterwards. */
export async function brokerAndWitness(cleanups: Cleanup[]): Promise<{ port: number; broker: Mosquitto; witness: WitnessSub }> {
  const port = await freePort();
  const broker = new Mosquitto(port);
  await broker.start();
  cleanups.push(() => broker.stop());
  const witness = new WitnessSub(port);
  await witness.start();
  cleanups.push(() => witness.stop());
  return { port, broker, witness };
}

export { makeStation, sleep };

/** Deterministic pseudo-random numbers (a run can be repeated with XRAY_QC_FAULTS_SEED). */
export function rng(seed = Number(process.env.XRAY_QC_FAULTS_SEED ?? 20261126)): () => number {
  return prng(seed);
}
