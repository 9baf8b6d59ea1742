import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import type { Command } from 'commander';
import mqtt from 'mqtt';
import pino from 'pino';
import { summary } from '../audit/queries.js';
import { defaultDemoDir, ensureDemoModel } from '../model/demo/demo-model.js';
import { openDatabaseReadOnly } from '../record/database.js';
import type { VerdictMessage } from '../record/store.js';
import { parseConfig } from '../service/config.js';
import { Daemon } from '../service/daemon.js';
import { SystemdNotifier } from '../service/systemd.js';
import { synthElectrode, ANOMALIES } from '../tools/synth.js';
import { encodeTiff16 } from '../tools/tiff-writer.js';
import { packageVersion } from './run.js';
import { parseNumber } from './options.js';

/**
 * `xray-qc demo`: the whole station on this machine — an embedded MQTT broker (aedes) on a free
 * local port, a temporary capture folder and database, the demo model, the daemon, and a stream of
 * synthetic captures (some abnormal, one corrupt). The table is printed from the verdicts as they
 * arrive over MQTT; an audit summary follows. Ctrl-C stops cleanly.
 */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('the station end to end: embedded broker, daemon, synthetic captures, live verdicts over MQTT')
    .option('--count <n>', 'synthetic captures to drop (plus one corrupt)', parseNumber(1, 1000, true), 20)
    .option('--interval-ms <ms>', 'pause between captures', parseNumber(0, 60_000, true), 400)
    .option('--model <dir>', 'a bundle or repository (default: the demo model, trained on synthetic captures)')
    .option('--keep', 'keep the temporary folder (captures, audit.db, daemon.log)')
    .action(async (o: { count: number; intervalMs: number; model?: string; keep?: boolean }) => {
      const root = await mkdtemp(join(tmpdir(), 'xray-qc-demo-'));
      const out = (s: string): boolean => process.stdout.write(`${s}\n`);
      process.stderr.write('preparing the demo model (generated on first use, ~90 MB)…\n');
      const modelDir = o.model ?? (await ensureDemoModel(defaultDemoDir()));
      const broker = await Aedes.createBroker();
      const server = createServer(broker.handle);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as AddressInfo).port;
      const captures = join(root, 'captures');
      await mkdir(captures, { recursive: true });
      const config = parseConfig({
        station_id: 'demo-1',
        capture: { dir: captures, settle_ms: 200 },
        model: { dir: modelDir },
        database: { path: join(root, 'audit.db') },
        mqtt: { url: `mqtt://127.0.0.1:${port}`, reconnect_ms: 500, password_env: null },
      }, join(root, 'config.yaml'), {});
      const logger = pino({ level: 'info' }, pino.destination({ dest: join(root, 'daemon.log'), sync: true }));
      const daemon = new Daemon(config, logger, new SystemdNotifier(logger, {}), packageVersion());

      const expected = o.count + 1;
      const seen = new Set<string>();
      let finish: () => void = () => undefined;
      const allArrived = new Promise<void>((resolve) => { finish = resolve; });
      const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'demo-viewer' });
      await sub.subscribeAsync(`${config.mqtt.topic_prefix}/verdict`, { qos: 1 });
      sub.on('message', (_topic, payload) => {
        const v = JSON.parse(payload.toString()) as VerdictMessage;
        if (seen.has(v.id)) return; // at-least-once delivery: drop duplicates by id
        seen.add(v.id);
        const p = v.p_abnormal === null ? '     -' : v.p_abnormal.toFixed(4);
        const file = v.file.slice(captures.length + 1);
        out(`${String(v.seq).padStart(4)}  ${file.padEnd(26)} ${v.verdict.toUpperCase().padEnd(5)} ${v.reason.padEnd(16)} ${p}  ${v.latency_ms === null ? '' : `${Math.round(v.latency_ms)} ms`}`);
        if (seen.size >= expected) finish();
      });

      let stopping = false;
      const shutdown = async (): Promise<void> => {
        if (stopping) return;
        stopping = true;
        await daemon.stop('demo finished');
        await sub.endAsync();
        await new Promise<void>((resolve) => broker.close(() => resolve()));
        server.close();
        if (!o.keep) await rm(root, { recursive: true, force: true });
      };
      const onSigint = (): void => {
        out('\nstopping…');
        void shutdown().then(() => process.exit(130));
      };
      process.once('SIGINT', onSigint);

      await daemon.start();
      out(`broker mqtt://127.0.0.1:${port} (aedes)  ·  captures ${captures}  ·  model ${modelDir}`);
      if (!o.model) out(`NOTE: the demo model was trained on synthetic captures only (${demoFigure(modelDir)}): it tells synthetic parts apart and knows nothing of real electrodes.`);
      out(`\n seq  file                       verdict reason           p_abn.  latency`);
      for (let i = 0; i < o.count && !stopping; i++) {
        const anomaly = i % 4 === 1 ? ANOMALIES[(i >> 2) % ANOMALIES.length] : null;
        const img = synthElectrode(1000 + i, anomaly);
        const name = `electrode_${String(i + 1).padStart(3, '0')}${anomaly ? `_${anomaly}` : ''}.tif`;
        const bytes = encodeTiff16(img.width, img.height, img.data, { compression: i % 2 ? 'deflate' : 'lzw', predictor: true });
        await writeFile(join(captures, `${name}.part`), bytes); // written aside, renamed into place
        await rename(join(captures, `${name}.part`), join(captures, name));
        if (i === Math.floor(o.count / 2)) await writeFile(join(captures, 'corrupt_capture.tif'), Buffer.from('II*\0 a capture cut short'));
        await new Promise((r) => setTimeout(r, o.intervalMs));
      }
      const timeout = setTimeout(finish, 120_000 + o.count * 5000);
      await allArrived;
      clearTimeout(timeout);
      const db = openDatabaseReadOnly(config.database.path);
      const s = summary(db, {})[0];
      db.close();
      out(`\naudit summary: ${s.total} inspections — ${s.pass} pass, ${s.flag} flag, ${s.error} error; ` +
        `flag rate ${s.flag_rate === null ? '-' : `${(100 * s.flag_rate).toFixed(1)} %`}; latency p50 ${s.latency_p50_ms?.toFixed(0)} ms, p95 ${s.latency_p95_ms?.toFixed(0)} ms` +
        `; ${seen.size}/${expected} verdicts received over MQTT`);
      process.removeListener('SIGINT', onSigint);
      await shutdown();
      if (o.keep) out(`kept ${root}`);
    });
}

/** The demo model's leave-one-bundle-out figure, from its manifest's metrics. */
function demoFigure(dir: string): string {
  try {
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { metrics?: { lobo_ba_overall?: Record<string, number> | null } };
    const ba = m.metrics?.lobo_ba_overall;
    return ba ? `leave-one-bundle-out balanced accuracy ${Object.entries(ba).map(([k, v]) => `${v.toFixed(1)} % (${k})`).join(', ')}` : 'no LOBO figure';
  } catch {
    return 'no LOBO figure';
  }
}
