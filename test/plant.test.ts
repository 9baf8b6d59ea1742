import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STATION_ROWS, stationVerdict, type StationRow } from '../src/plant/backfill.js';
import Sqlite from '../src/record/sqlite.js';
import { Postgres } from '../src/tools/postgres.js';
import { CLI, cli, ROOT, tempDir } from './helpers.js';
import { brokerConfig, capture } from './faults/rig.js';
import { DaemonProcess, freePort, makeStation, Mosquitto, sleep, until, type StationDirs } from './station.js';

/**
 * The plant collector (docs/plant.md) with real parts: Debian's PostgreSQL started here, a
 * persistent mosquitto, three station daemons and two collectors sharing one MQTT 5 shared
 * subscription. One collector is killed (-9) mid-stream and comes back, as systemd restarts it;
 * the broker is restarted once. Then a fourth station cut off from the broker is backfilled from
 * its database, and the plant's accuracy is compared with each station's.
 */

class CollectorProcess {
  proc: ChildProcess | null = null;
  output = '';
  constructor(private readonly config: string, private readonly env: NodeJS.ProcessEnv) {}
  start(): void {
    this.output = '';
    this.proc = spawn(process.execPath, [CLI, 'collect', '--config', this.config], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.env } });
    this.proc.stdout!.on('data', (d: Buffer) => { this.output += d.toString(); });
    this.proc.stderr!.on('data', (d: Buffer) => { this.output += d.toString(); });
  }
  async waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<void> {
    await until(() => pattern.test(this.output), timeoutMs, `collector: ${pattern} (output: ${this.output.slice(-2000)})`);
  }
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => { p.once('exit', () => resolve()); p.kill(signal); });
  }
}

function stationRows(db: string): Array<{ id: string; seq: number; verdict: string; station_id: string; bundle: string | null }> {
  const d = new Sqlite(db, { readonly: true });
  try {
    return d.prepare('SELECT id, seq, verdict, station_id, bundle FROM inspections ORDER BY seq').all() as Array<{ id: string; seq: number; verdict: string; station_id: string; bundle: string | null }>;
  } finally {
    d.close();
  }
}

function stationLabels(db: string): Array<{ id: number; inspection_id: string; label: string }> {
  const d = new Sqlite(db, { readonly: true });
  try {
    return d.prepare('SELECT id, inspection_id, label FROM labels ORDER BY id').all() as Array<{ id: number; inspection_id: string; label: string }>;
  } finally {
    d.close();
  }
}

/** Labels seq `from`, `from` + `every`, … (abnormal where seq % 4 == 0) by one `label import` CSV; returns how many. */
function labelEvery(s: StationDirs, every: number, from: number): number {
  const rows = stationRows(s.db).filter((r) => (r.seq - from) % every === 0);
  const csv = join(s.root, `labels-${every}.csv`);
  writeFileSync(csv, `id,label,by\n${rows.map((r) => `${r.id},${r.seq % 4 ? 'normal' : 'abnormal'},qe`).join('\n')}\n`);
  const r = cli(['label', 'import', csv, '--db', s.db]);
  if (r.code !== 0) throw new Error(r.stderr);
  return rows.length;
}

const FIELDS = "  fields:\n    path: '^(?<bundle>B[0-9]+)/(?<part>[^/]+)\\.tiff?$'\n";

function station(id: string, port: number): StationDirs {
  const s = makeStation({ port, settleMs: 150 });
  writeFileSync(s.config, readFileSync(s.config, 'utf8').replace('station_id: xray-1', `station_id: ${id}`).replace('  settle_ms: 150\n', () => `  settle_ms: 150\n${FIELDS}`));
  for (let b = 1; b <= 3; b++) mkdirSync(join(s.captures, `B${b}`));
  return s;
}

async function drop(s: StationDirs, from: number, to: number, seed: number): Promise<void> {
  for (let i = from; i < to; i++) writeFileSync(join(s.captures, `B${1 + (i % 3)}`, `p-${i}.tif`), capture(seed + i, 160, 300));
}

describe('xray-qc collect: the config', () => {
  it('is as strict as the station\'s: unknown keys and a missing URL are one line each, exit 2; the example in deploy/plant parses', () => {
    const dir = tempDir('xray-qc-plant-config-');
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'collector_id: a\nmqtt:\n  url: mqtt://127.0.0.1:1\n  conections: 4\nbatch:\n  max: 0\n');
    const r = cli(['collect', '--config', bad], { env: { XRAY_QC_PG_URL: 'postgres://x@127.0.0.1:1/p' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^mqtt: Unrecognized key: "conections"$/m);
    expect(r.stderr).toMatch(/^batch\.max: .*>=1/m);
    const noUrl = cli(['collect', 'gaps', '--config', join(dir, '..', 'nope.yaml')]);
    expect(noUrl.code).toBe(2);
    const example = cli(['collect', 'gaps', '--config', join(ROOT, 'deploy/plant/plant.yaml')], { env: { XRAY_QC_PG_URL: '' } });
    expect(example.code).toBe(2);
    expect(example.stderr.trim()).toBe('postgres.url_env: environment variable XRAY_QC_PG_URL is not set (postgres://user:password@host:5432/db)');
  });
});

describe('xray-qc collect: every station into one PostgreSQL', () => {
  const pgServer = new Postgres();
  let broker: Mosquitto;
  let port: number;
  let db: pg.Client;
  const env: NodeJS.ProcessEnv = {};
  const collectors: CollectorProcess[] = [];
  const daemons: DaemonProcess[] = [];
  const stations: StationDirs[] = [];
  let plantYaml = '';

  beforeAll(async () => {
    await pgServer.start();
    env.XRAY_QC_PG_URL = pgServer.url();
    port = await freePort();
    const dir = tempDir('xray-qc-plant-');
    broker = new Mosquitto(port, brokerConfig(join(dir, 'broker'), port, { persistence: true, lines: ['max_queued_messages 100000', 'max_inflight_messages 20'] }), true);
    await broker.start();
    for (const name of ['collector-a', 'collector-b']) {
      const file = join(dir, `${name}.yaml`);
      writeFileSync(file, `collector_id: ${name}\nmqtt:\n  url: mqtt://127.0.0.1:${port}\n  connections: 4\n  reconnect_ms: 300\nbatch:\n  max_wait_ms: 20\n  retry_ms: 500\ngaps:\n  report_after_s: 2\n  check_s: 1\n`);
      plantYaml = file;
      collectors.push(new CollectorProcess(file, env));
    }
    db = new pg.Client(pgServer.url());
    await db.connect();
  }, 120_000);

  afterAll(async () => {
    for (const d of daemons) await d.stop('SIGKILL');
    for (const c of collectors) await c.stop('SIGKILL');
    await db?.end();
    await broker?.stop();
    await pgServer.stop();
  });

  it('3 stations × 100 captures, 2 collectors, one killed -9 mid-stream and the broker restarted: every row exactly once; a replay adds nothing', async () => {
    for (const c of collectors) c.start();
    for (const c of collectors) await c.waitFor(/connected to the plant broker/);
    for (const id of ['s1', 's2', 's3']) {
      const s = station(id, port);
      stations.push(s);
      const d = new DaemonProcess(s.config);
      daemons.push(d);
      d.start();
    }
    for (const d of daemons) await d.waitFor(/watching the capture folder/);
    const count = async (): Promise<number> => Number((await db.query('SELECT count(*) AS n FROM received')).rows[0].n);
    for (const [k, s] of stations.entries()) await drop(s, 0, 35, 1000 * k);
    await until(async () => (await count()) >= 30, 60_000, 'the first verdicts in PostgreSQL');
    await collectors[0].stop('SIGKILL'); // mid-stream
    for (const [k, s] of stations.entries()) await drop(s, 35, 65, 1000 * k);
    await sleep(1500);
    const subscribed = (c: CollectorProcess): number => c.output.split('"msg":"subscribed"').length - 1;
    const before = subscribed(collectors[1]);
    await broker.stop(); // restarted once, its sessions saved
    await sleep(500);
    await broker.start();
    // what the stations publish before a collector subscribes again is dropped (docs/plant.md)
    await until(() => subscribed(collectors[1]) > before, 20_000, 'collector b subscribed again');
    for (const [k, s] of stations.entries()) await drop(s, 65, 100, 1000 * k);
    await sleep(1500);
    collectors[0].start(); // back, as systemd would restart it: its session's unacknowledged messages come again
    try {
      await until(async () => (await count()) === 300, 60_000, 'all 300 verdicts in PostgreSQL');
    } catch (err) {
      const got = (await db.query('SELECT station_id, array_agg(seq::int ORDER BY seq) AS seqs FROM received GROUP BY 1')).rows;
      for (const g of got) console.log('DIAG', g.station_id, (g.seqs as number[]).length, JSON.stringify(g.seqs));
      console.log('DIAG A', collectors[0].output.slice(-3000).replace(/\n/g, ' | '));
      console.log('DIAG B', collectors[1].output.slice(-3000).replace(/\n/g, ' | '));
      const st = new Sqlite(stations[0].db, { readonly: true });
      console.log('DIAG S1', JSON.stringify(st.prepare('SELECT count(*) n, count(published_at) p FROM inspections').get()), daemons[0].output.slice(-1500).replace(/\n/g, ' | '));
      throw err;
    }
    await sleep(1000);
    for (const s of stations) {
      const local = stationRows(s.db);
      expect(local).toHaveLength(100);
      const plant = (await db.query('SELECT id, seq::int AS seq, verdict, station_id, bundle FROM inspections WHERE station_id = $1 ORDER BY seq', [local[0].station_id])).rows;
      expect(plant).toEqual(local);
    }
    expect(Number((await db.query('SELECT count(*) - count(DISTINCT id) AS d FROM inspections')).rows[0].d)).toBe(0);
    expect((await db.query("SELECT * FROM alerts WHERE kind <> 'gap'")).rows).toEqual([]);
    // a replayed message: no second row; the same id with another payload: kept once, an alert
    const row = new Sqlite(stations[0].db, { readonly: true }).prepare(`${STATION_ROWS} WHERE i.seq = 7`).get() as StationRow;
    const msg = stationVerdict(row); // as published: with its heat map's `where`
    const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5 });
    await pub.publishAsync(`xray-qc/${msg.station_id}/verdict`, JSON.stringify(msg), { qos: 1 });
    await pub.publishAsync(`xray-qc/${msg.station_id}/verdict`, JSON.stringify({ ...msg, verdict: msg.verdict === 'pass' ? 'flag' : 'pass' }), { qos: 1 });
    await pub.publishAsync(`xray-qc/${msg.station_id}/verdict`, 'not json', { qos: 1 });
    await pub.endAsync();
    await until(async () => (await db.query("SELECT 1 FROM alerts WHERE kind = 'invalid'")).rowCount === 1, 20_000, 'the invalid message recorded');
    await until(async () => (await db.query("SELECT 1 FROM alerts WHERE kind = 'conflict'")).rowCount === 1, 20_000, 'the conflict recorded');
    expect(await count()).toBe(300);
    const kept = (await db.query('SELECT verdict FROM inspections WHERE id = $1', [msg.id])).rows;
    expect(kept).toEqual([{ verdict: msg.verdict }]);
    await until(() => /(arrived again with a different payload; the first is kept|arrived twice in one batch with different payloads)/.test(collectors.map((c) => c.output).join('')), 10_000, 'the log line');
    // what each collector did (the restarted one got its session's share of the messages that came meanwhile)
    const stats: Record<string, unknown> = {};
    for (const [k, c] of collectors.entries()) {
      await c.stop();
      stats[k ? 'b' : 'a_after_restart'] = JSON.parse(c.output.split('\n').find((l) => l.includes('"msg":"stopping"')) ?? '{}');
      c.start();
      await c.waitFor(/"msg":"subscribed"/);
    }
    console.log('PLANT', JSON.stringify(stats));
    // labels set on each station reach the plant live (<prefix>/label), once
    for (const st of stations) labelEvery(st, 3, 1);
    const labels = async (): Promise<number> => Number((await db.query('SELECT count(*) AS n FROM labels')).rows[0].n);
    await until(async () => (await labels()) === 3 * 34, 60_000, 'the 102 labels in PostgreSQL');
    for (const st of stations) {
      const local = stationLabels(st.db);
      const id = stationRows(st.db)[0].station_id;
      expect((await db.query('SELECT label_id::int AS id, inspection_id, label FROM labels WHERE station_id = $1 ORDER BY label_id', [id])).rows).toEqual(local);
    }
  }, 300_000);

  it('a station cut off from the broker while it scores 300 captures, then collect backfill: nothing missing, nothing twice; labels too', async () => {
    const s = station('s4', await freePort()); // a port nobody listens on: the broker is out of reach
    const d = new DaemonProcess(s.config);
    daemons.push(d);
    d.start();
    await d.waitFor(/watching the capture folder/);
    await drop(s, 0, 300, 5000);
    await until(() => stationRows(s.db).length === 300, 120_000, 'the cut-off station scored 300');
    const labelled = labelEvery(s, 7, 1);
    expect(labelled).toBe(43);
    const first = cli(['collect', 'backfill', '--config', plantYaml, '--station-db', s.db, '--batch', '100'], { env });
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ verdicts: 300, labels: labelled, duplicates: 0, conflicts: 0 });
    expect(first.stderr).toMatch(/backfill: 100 read/);
    const again = cli(['collect', 'backfill', '--config', plantYaml, '--station-db', s.db], { env });
    expect(JSON.parse(again.stdout)).toMatchObject({ verdicts: 0, labels: 0, duplicates: 300 + labelled });
    const plant = (await db.query("SELECT id, seq::int AS seq, verdict, station_id, bundle FROM inspections WHERE station_id = 's4' ORDER BY seq")).rows;
    expect(plant).toEqual(stationRows(s.db));
    const gaps = cli(['collect', 'gaps', '--config', plantYaml], { env });
    expect(gaps.code).toBe(0);
    expect(gaps.stdout).toBe('');
  }, 300_000);

  it('a seq gap open past gaps.report_after_s is reported once (log line, alerts row) and listed by collect gaps until it closes', async () => {
    const t0 = Date.UTC(2026, 10, 30);
    const msg = (seq: number): string => JSON.stringify({
      id: `s9-${seq}`, seq, station_id: 's9', file: `/c/${seq}.tif`, captured_at: null, scored_at: new Date(t0 + seq * 1000).toISOString(), verdict: 'pass', reason: 'normal',
      p_abnormal: 0.1, threshold: 0.5, model: null, latency_ms: 3, error: null, bundle: null, part: null,
    });
    const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5 });
    for (const seq of [1, 5]) await pub.publishAsync('xray-qc/s9/verdict', msg(seq), { qos: 1 });
    await until(async () => (await db.query("SELECT 1 FROM alerts WHERE kind = 'gap' AND station_id = 's9' AND ref = '2-4'")).rowCount === 1, 30_000, 'the gap alert');
    await until(() => /station s9: seq 2–4 missing for \d+ s/.test(collectors.map((c) => c.output).join('')), 10_000, 'the gap log line');
    const open = cli(['collect', 'gaps', '--config', plantYaml], { env });
    expect(open.stdout.trim().split('\n').map((l) => JSON.parse(l) as { station_id: string }).filter((g) => g.station_id === 's9')).toMatchObject([{ from_seq: 2, to_seq: 4, missing: 3 }]);
    await sleep(2500);
    expect((await db.query("SELECT count(*)::int AS n FROM alerts WHERE kind = 'gap' AND station_id = 's9'")).rows[0].n).toBe(1); // once
    for (const seq of [2, 3, 4]) await pub.publishAsync('xray-qc/s9/verdict', msg(seq), { qos: 1 });
    await pub.endAsync();
    await until(async () => (await db.query("SELECT 1 FROM received WHERE station_id = 's9'")).rowCount === 5, 20_000, 'the gap filled');
    const closed = cli(['collect', 'gaps', '--config', plantYaml], { env });
    expect(closed.stdout).toBe('');
    expect(closed.stderr).toMatch(/^0 gaps \(0 verdicts missing\)/);
  }, 120_000);

  it("plant accuracy by station and bundle equals the union of each station's audit accuracy", async () => {
    for (const s of stations) {
      const r = cli(['collect', 'backfill', '--config', plantYaml, '--station-db', s.db], { env });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ verdicts: 0, labels: 0, duplicates: 134 }); // all came over MQTT
    }
    const plant = cli(['audit', 'accuracy', '--pg', 'XRAY_QC_PG_URL', '--by', 'station-bundle', '--format', 'json'], { env });
    expect(plant.code, plant.stderr).toBe(0);
    const rows = plant.stdout.trim().split('\n').map((l) => JSON.parse(l) as { group: string });
    const union: Array<{ group: string }> = [];
    for (const s of stations) {
      const id = stationRows(s.db)[0].station_id;
      const local = cli(['audit', 'accuracy', '--by', 'bundle', '--format', 'json', '--db', s.db]);
      for (const l of local.stdout.trim().split('\n').map((x) => JSON.parse(x) as { group: string })) if (l.group !== 'Overall') union.push({ ...l, group: `${id}/${l.group}` });
    }
    const plantStations = rows.filter((r) => r.group !== 'Overall' && !r.group.startsWith('s4/') && !r.group.startsWith('s9/'));
    expect(plantStations).toEqual(union);
    expect(union.length).toBe(9);
  }, 300_000);
});
