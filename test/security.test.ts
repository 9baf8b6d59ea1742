import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Sqlite from '../src/record/sqlite.js';
import { afterEach, expect, it } from 'vitest';
import { tempDir } from './helpers.js';
import { DaemonProcess, freePort, makeStation, Mosquitto, until } from './station.js';

/** The security pass (docs/security.md), checked on a running daemon. */

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** Sockets of `pid` that accept connections or datagrams from the network: TCP LISTEN, bound UDP. */
function listeningSockets(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch { /* closed meanwhile */ }
  }
  const found: string[] = [];
  for (const table of ['tcp', 'tcp6', 'udp', 'udp6']) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.trim().split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const [local, state, inode] = [f[1], f[3], f[9]];
      const listening = table.startsWith('tcp') ? state === '0A' : true;
      if (listening && inodes.has(inode)) found.push(`${table} ${local}`);
    }
  }
  return found;
}

async function rig(): Promise<{ station: ReturnType<typeof makeStation>; port: number }> {
  const port = await freePort();
  const broker = new Mosquitto(port);
  await broker.start();
  cleanups.push(() => broker.stop());
  return { station: makeStation({ port }), port };
}

it('listens on no port; creates its database and folders without access for other users', async () => {
  const { station } = await rig();
  const daemon = new DaemonProcess(station.config);
  cleanups.push(() => daemon.stop('SIGKILL'));
  daemon.start();
  await daemon.waitFor(/connected to MQTT broker[\s\S]*watching the capture folder|watching the capture folder[\s\S]*connected to MQTT broker/);
  expect(listeningSockets(daemon.proc!.pid!)).toEqual([]);
  // the check itself sees a listener when there is one
  const { spawn } = await import('node:child_process');
  const server = spawn(process.execPath, ['-e', "require('net').createServer().listen(0, '127.0.0.1', () => console.log('up'))"], { stdio: ['ignore', 'pipe', 'ignore'] });
  cleanups.push(async () => { server.kill(); });
  await new Promise((r) => server.stdout!.once('data', r));
  expect(listeningSockets(server.pid!)).toHaveLength(1);
  const modes = Object.fromEntries(['', '-wal', '-shm'].map((s) => [`audit.db${s}`, statSync(`${station.db}${s}`).mode & 0o777]));
  modes.data = statSync(join(station.root, 'data')).mode & 0o777;
  for (const [name, mode] of Object.entries(modes)) expect(mode & 0o007, `${name} mode ${mode.toString(8)}`).toBe(0);
  expect(await daemon.stop()).toBe(0);
});

it('reads the MQTT password from a systemd credential; never logs it; flags a world-writable model folder', async () => {
  const port = await freePort();
  const dir = tempDir();
  chmodSync(dir, 0o755);
  const passwd = join(dir, 'passwd');
  execFileSync('mosquitto_passwd', ['-b', '-c', passwd, 'line', 's3cret-from-credential']);
  chmodSync(passwd, 0o644);
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous false\npassword_file ${passwd}\n`);
  const broker = new Mosquitto(port, conf);
  await broker.start();
  cleanups.push(() => broker.stop());
  const station = makeStation({ port });
  writeFileSync(station.config, readFileSync(station.config, 'utf8').replace('  reconnect_ms: 200\n', '  reconnect_ms: 200\n  username: line\n'));
  const creds = join(station.root, 'credentials');
  mkdirSync(creds, { mode: 0o700 });
  writeFileSync(join(creds, 'mqtt-password'), 's3cret-from-credential\n', { mode: 0o400 });
  chmodSync(station.models, 0o777);
  const daemon = new DaemonProcess(station.config, { CREDENTIALS_DIRECTORY: creds, XRAY_QC_MQTT_PASSWORD: '', XRAY_QC_LOG_LEVEL: 'debug' });
  cleanups.push(() => daemon.stop('SIGKILL'));
  daemon.start();
  await daemon.waitFor(/connected to MQTT broker/);
  expect(daemon.output).toMatch(/permissions: model folder .* is writable by every user \(mode 777\)/);
  await until(() => {
    const db = new Sqlite(station.db, { readonly: true });
    try {
      return db.prepare("SELECT 1 FROM events WHERE kind = 'security' AND message LIKE 'model folder%'").get() !== undefined;
    } finally {
      db.close();
    }
  }, 5000, 'a security event');
  expect(await daemon.stop(), daemon.output.slice(-3000)).toBe(0);
  expect(daemon.output).not.toMatch(/s3cret/);
});

it('the example mosquitto ACL (deploy/mosquitto/xray-qc.acl): the station publishes, the PLC reads but cannot forge a verdict', async () => {
  const { ROOT } = await import('./helpers.js');
  const mqtt = (await import('mqtt')).default;
  const port = await freePort();
  const dir = tempDir();
  chmodSync(dir, 0o755);
  const passwd = join(dir, 'passwd');
  execFileSync('mosquitto_passwd', ['-b', '-c', passwd, 'xray-1', 'station-pw']);
  execFileSync('mosquitto_passwd', ['-b', passwd, 'plc-line-3', 'plc-pw']);
  chmodSync(passwd, 0o644);
  const acl = join(dir, 'xray-qc.acl');
  writeFileSync(acl, readFileSync(join(ROOT, 'deploy/mosquitto/xray-qc.acl')), { mode: 0o644 });
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous false\npassword_file ${passwd}\nacl_file ${acl}\n`);
  const broker = new Mosquitto(port, conf);
  await broker.start();
  cleanups.push(() => broker.stop());
  const plc = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { username: 'plc-line-3', password: 'plc-pw', clientId: 'plc-line-3' });
  cleanups.push(() => plc.endAsync());
  const got: string[] = [];
  plc.on('message', (topic, payload) => got.push(`${topic} ${payload.toString().slice(0, 40)}`));
  await plc.subscribeAsync('xray-qc/xray-1/#', { qos: 1 });
  await plc.publishAsync('xray-qc/xray-1/verdict', 'FORGED', { qos: 1 }); // denied: dropped by the broker
  const station = makeStation({ port });
  writeFileSync(station.config, readFileSync(station.config, 'utf8').replace('  reconnect_ms: 200\n', '  reconnect_ms: 200\n  username: xray-1\n'));
  const daemon = new DaemonProcess(station.config, { XRAY_QC_MQTT_PASSWORD: 'station-pw' });
  cleanups.push(() => daemon.stop('SIGKILL'));
  daemon.start();
  await daemon.waitFor(/watching the capture folder/);
  writeFileSync(join(station.captures, 'a.tif'), 'not a tiff');
  await until(() => got.some((g) => g.startsWith('xray-qc/xray-1/verdict ')), 20_000, 'the verdict at the PLC');
  expect(got.some((g) => g.startsWith('xray-qc/xray-1/status '))).toBe(true);
  expect(got.filter((g) => g.includes('FORGED'))).toEqual([]);
  expect(await daemon.stop()).toBe(0);
});
