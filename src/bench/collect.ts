import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pg from 'pg';
import pino from 'pino';
import { Collector } from '../plant/collector.js';
import { parsePlantConfig } from '../plant/config.js';
import { freePort } from '../tools/net.js';
import { Postgres } from '../tools/postgres.js';

/**
 * `npm run bench:collect [-- N [CONNECTIONS]]`: ingest throughput of one collector into a real
 * PostgreSQL (Debian's, started here, fsync on) through a real mosquitto. N verdict messages
 * (default 20,000) from three "stations" are published at QoS 1 into the broker while the
 * collector is away (its session holds them), then the collector starts and the clock runs
 * until the last one is committed. Reported: verdicts/s and the collector's CPU time per verdict.
 */

function verdict(station: string, seq: number, t0: number): string {
  const at = new Date(t0 + seq * 1000).toISOString();
  return JSON.stringify({
    id: randomUUID(), seq, station_id: station, file: `/srv/captures/${seq}.tif`, captured_at: at, scored_at: at, verdict: seq % 5 ? 'pass' : 'flag',
    reason: seq % 5 ? 'normal' : 'anomaly', p_abnormal: (seq % 1000) / 1000, threshold: 0.5,
    model: { name: 'electrode-resnet34', version: 3, sha256: 'ab'.repeat(32), bundle_sha256: 'cd'.repeat(32) }, latency_ms: 1400, error: null, bundle: `B${Math.floor(seq / 500)}`, part: `P-${seq}`,
  });
}

async function main(): Promise<void> {
  const n = Number(process.argv[2]) || 20_000;
  const connections = Number(process.argv[3]) || 16;
  const db = new Postgres();
  await db.start();
  const port = await freePort();
  // mosquitto keeps 1,000 messages per offline session by default (max_queued_messages): the
  // plant broker needs more for its collectors (docs/plant.md), and so does this benchmark
  const conf = join(db.dir, 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n${process.getuid?.() === 0 ? 'user root\n' : ''}`);
  const broker = spawn('/usr/sbin/mosquitto', ['-c', conf], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  const config = parsePlantConfig({ collector_id: 'bench', mqtt: { url: `mqtt://127.0.0.1:${port}`, connections } }, '/bench/plant.yaml', { XRAY_QC_PG_URL: db.url() });
  const logger = pino({ level: 'warn' });
  // subscribe once so that the broker keeps the collector's sessions, then leave
  const first = new Collector(config, logger);
  await first.start();
  await new Promise((r) => setTimeout(r, 1000));
  await first.stop();
  const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5 });
  const t0 = Date.UTC(2026, 10, 1);
  const per = Math.ceil(n / 3);
  for (let start = 1; start <= per; start += 500) {
    const sends: Promise<unknown>[] = [];
    for (const station of ['s1', 's2', 's3']) {
      for (let seq = start; seq < start + 500 && seq <= per; seq++) sends.push(pub.publishAsync(`xray-qc/${station}/verdict`, verdict(station, seq, t0), { qos: 1 }));
    }
    await Promise.all(sends);
  }
  await pub.endAsync();
  const total = 3 * per;
  const check = new pg.Client(db.url());
  await check.connect();
  const collector = new Collector(config, logger);
  const cpu0 = process.cpuUsage();
  const a = performance.now();
  await collector.start();
  for (;;) {
    const got = Number((await check.query('SELECT count(*) AS n FROM received')).rows[0].n);
    if (got >= total) break;
    if (process.env.XRAY_QC_BENCH_TRACE) console.error(`${((performance.now() - a) / 1000).toFixed(1)} s: ${got}/${total} held ${collector.stats.batches}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const s = (performance.now() - a) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const batches = collector.stats.batches;
  await collector.stop();
  await check.end();
  broker.kill('SIGTERM');
  await db.stop();
  console.log(`| collector ingest (${total} verdicts, ${connections} connections, fsync on) | ${(total / s).toFixed(0)} verdicts/s | ${s.toFixed(2)} s | ${(total / batches).toFixed(1)} per transaction | collector CPU ${((cpu.user + cpu.system) / 1000 / total * 1000).toFixed(0)} µs/verdict (PostgreSQL and mosquitto not included) |`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
