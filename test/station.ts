import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import Sqlite from '../src/record/sqlite.js';
import { CLI, PYTHON, ROOT, tempDir, cli } from './helpers.js';

/** Test rig for the daemon: a real mosquitto, a real daemon process, a real MQTT subscriber. */

/** Debian's broker (not always on a non-root PATH). */
const MOSQUITTO = existsSync('/usr/sbin/mosquitto') ? '/usr/sbin/mosquitto' : 'mosquitto';

import { freePort } from '../src/tools/net.js';

export { freePort };

export class Mosquitto {
  private proc: ChildProcess | null = null;
  /**
   * `configFile`: a mosquitto.conf (its listener must use `port`); default: anonymous on `port`.
   * `probe`: wait until an anonymous client connects (not possible when the config refuses them).
   */
  constructor(readonly port: number, private readonly configFile?: string, private readonly probe = !configFile) {}

  async start(): Promise<void> {
    const args = this.configFile ? ['-c', this.configFile] : ['-p', String(this.port)];
    this.proc = spawn(MOSQUITTO, args, { stdio: 'ignore' });
    if (!this.probe) {
      await sleep(500); // an authenticating broker refuses our anonymous probe below
      return;
    }
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const ok = await new Promise<boolean>((resolve) => {
        const c = mqtt.connect(`mqtt://127.0.0.1:${this.port}`, { reconnectPeriod: 0, connectTimeout: 1000 });
        c.once('connect', () => { c.end(true); resolve(true); });
        c.once('error', () => { c.end(true); resolve(false); });
        c.once('close', () => resolve(false));
      });
      if (ok) return;
      await sleep(100);
    }
    throw new Error('mosquitto did not start');
  }

  /** Freezes (SIGSTOP) or thaws (SIGCONT) the broker: connections stay open, nothing is answered. */
  pause(on: boolean): void {
    this.proc?.kill(on ? 'SIGSTOP' : 'SIGCONT');
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill(signal);
    });
  }
}

export interface Verdict { id: string; seq: number; file: string; verdict: string; reason: string; error: { code: string } | null }

/** A QoS 1 subscriber with a persistent session, so nothing is lost while it is connected. */
export class Subscriber {
  readonly verdicts: Verdict[] = [];
  readonly status: Array<{ state: string; error?: string | null; queue?: number }> = [];
  readonly plain: string[] = [];
  private client: MqttClient | null = null;
  constructor(private readonly port: number, private readonly prefix = 'xray-qc/xray-1') {}

  async start(): Promise<void> {
    const client = mqtt.connect(`mqtt://127.0.0.1:${this.port}`, { clientId: `sub-${process.pid}-${Date.now()}`, clean: false, reconnectPeriod: 200 });
    client.on('message', (topic, payload) => {
      if (topic === `${this.prefix}/verdict`) this.verdicts.push(JSON.parse(payload.toString()) as Verdict);
      else if (topic === `${this.prefix}/status`) this.status.push(JSON.parse(payload.toString()) as { state: string; error?: string | null; queue?: number });
      else if (topic === `${this.prefix}/verdict/plain`) this.plain.push(payload.toString());
    });
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    await client.subscribeAsync(`${this.prefix}/#`, { qos: 1 });
    this.client = client;
  }

  uniqueIds(): Set<string> {
    return new Set(this.verdicts.map((v) => v.id));
  }

  async stop(): Promise<void> {
    await this.client?.endAsync();
  }
}

export interface StationDirs { root: string; captures: string; config: string; db: string; models: string }

export function makeStation(opts: { port: number; settleMs?: number; reconnectMs?: number; extra?: string } = { port: 1883 }): StationDirs {
  const root = tempDir('xray-qc-station-');
  const captures = join(root, 'captures');
  const models = join(root, 'models');
  mkdirSync(captures, { recursive: true });
  const r = cli(['model', 'demo', '--tiny', '--out', join(models, 'tiny-v1')]);
  if (r.code !== 0) throw new Error(r.stderr);
  const config = join(root, 'config.yaml');
  writeFileSync(config, `station_id: xray-1
capture:
  dir: ./captures
  settle_ms: ${opts.settleMs ?? 300}
  incomplete_grace_ms: 2000
model:
  dir: ./models
database:
  path: ./data/audit.db
mqtt:
  url: mqtt://127.0.0.1:${opts.port}
  reconnect_ms: ${opts.reconnectMs ?? 200}
${opts.extra ?? ''}`);
  return { root, captures, config, db: join(root, 'data/audit.db'), models };
}

export class DaemonProcess {
  proc: ChildProcess | null = null;
  output = '';
  /** `wrap`: a command the daemon runs under (e.g. unshare + mount), its own arguments appended. */
  constructor(private readonly config: string, private readonly env: NodeJS.ProcessEnv = {}, private readonly wrap: string[] = []) {}

  start(): void {
    const argv = [...this.wrap, process.execPath, CLI, 'run', '--config', this.config];
    this.proc = spawn(argv[0], argv.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.env },
    });
    this.proc.stdout!.on('data', (d: Buffer) => { this.output += d.toString(); });
    this.proc.stderr!.on('data', (d: Buffer) => { this.output += d.toString(); });
  }

  async waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.output)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}; output:\n${this.output.slice(-3000)}`);
      if (this.proc?.exitCode !== null && this.proc?.exitCode !== undefined) throw new Error(`daemon exited ${this.proc.exitCode}:\n${this.output.slice(-3000)}`);
      await sleep(50);
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return p?.exitCode ?? null;
    return new Promise((resolve) => {
      p.once('exit', (code) => resolve(code));
      p.kill(signal);
    });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * A real NOTIFY_SOCKET (test/tools/notify_listener.py) at `socketPath`, what systemd would read;
 * `heard` is everything received so far. Started and listening when this resolves.
 */
export async function notifyListener(socketPath: string, cleanups: Array<() => unknown>): Promise<{ socketPath: string; readonly heard: string }> {
  const listener = spawn(PYTHON, [join(ROOT, 'test/tools/notify_listener.py'), socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(() => { listener.kill('SIGKILL'); });
  let heard = '';
  listener.stdout!.on('data', (d: Buffer) => { heard += d.toString(); });
  await until(() => heard.includes('LISTENING'), 10_000, 'notify listener');
  return { socketPath, get heard() { return heard; } };
}

/** A broker, a subscriber and a station for it, each stopped by `cleanups` (run in reverse). */
export async function brokerSubscriberStation(cleanups: Array<() => Promise<unknown>>, opts: { settleMs?: number; extra?: string; reconnectMs?: number } = {}): Promise<{ broker: Mosquitto; sub: Subscriber; station: StationDirs }> {
  const port = await freePort();
  const broker = new Mosquitto(port);
  await broker.start();
  cleanups.push(() => broker.stop());
  const sub = new Subscriber(port);
  await sub.start();
  cleanups.push(() => sub.stop());
  return { broker, sub, station: makeStation({ port, ...opts }) };
}

/** Rows of a query on a station's audit database, opened read-only for the call. */
export function sqlRows<T = Record<string, unknown>>(db: string, sql: string, ...params: unknown[]): T[] {
  const d = new Sqlite(db, { readonly: true });
  try {
    return d.prepare(sql).all(...params) as T[];
  } finally {
    d.close();
  }
}
