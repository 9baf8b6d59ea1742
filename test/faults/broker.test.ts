import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';
import { DaemonProcess, freePort, Mosquitto, until } from '../station.js';
import { auditRows, brokerConfig, capture, countLoss, makeStation, report, sleep, SOAK, WitnessSub, cleanupsAfterEach, delivered } from './rig.js';

/**
 * Fault 2: the broker is down for OUTAGE_S mid-burst (it keeps its sessions: persistence), then
 * restarts losing every session (no persistence). Fault 7: brokers that refuse us — wrong
 * credentials, a TLS certificate we do not trust, a client id it does not accept.
 */

const OUTAGE_S = SOAK ? 60 : 10;

const cleanups = cleanupsAfterEach();

it(`broker down ${OUTAGE_S} s mid-burst, then a restart that loses its sessions: every verdict delivered, in seq order`, async () => {
  const dir = tempDir('xray-qc-broker-');
  const port = await freePort();
  const persistent = new Mosquitto(port, brokerConfig(join(dir, 'persistent'), port, { persistence: true }), true);
  await persistent.start();
  const witness = new WitnessSub(port);
  await witness.start();
  cleanups.push(() => witness.stop());
  // resend_delay_ms: a backlog waits for subscribers that reconnect to a restarted broker
  const station = makeStation({ port, settleMs: 200, reconnectMs: 500, extra: '  reconnect_max_ms: 2000\n  resend_delay_ms: 3000\n' });
  const daemon = new DaemonProcess(station.config);
  cleanups.push(() => daemon.stop('SIGKILL'));
  daemon.start();
  await daemon.waitFor(/connected to MQTT broker/);

  const files: string[] = [];
  let writing = true;
  const writer = (async () => {
    for (let i = 0; writing; i++) {
      const path = join(station.captures, `cap-${String(i).padStart(4, '0')}.tif`);
      await writeFile(path, capture(20_000 + i));
      files.push(path);
      await sleep(250);
    }
  })();
  await sleep(2000);
  await persistent.stop();
  const downAt = files.length;
  await sleep(OUTAGE_S * 1000);
  const scoredWhileDown = auditRows(station.db).filter((r) => r.published_at === null).length;
  const backAt = Date.now();
  await persistent.start();
  await until(() => auditRows(station.db).slice(0, downAt).every((r) => r.published_at !== null), 60_000, 'the backlog published');
  const backlogMs = Date.now() - backAt;
  await sleep(2000);
  // A restart that loses every session: the witness's subscription and queued messages are gone.
  await persistent.stop();
  const fresh = new Mosquitto(port, brokerConfig(join(dir, 'fresh'), port, { persistence: false }), true);
  await sleep(1000);
  await fresh.start();
  cleanups.push(() => fresh.stop());
  await sleep(3000);
  writing = false;
  await writer;
  await until(() => delivered(station.db, files.length, witness), 90_000, 'every verdict at the witness');
  await sleep(1000);
  const loss = countLoss(station.db, files, witness);
  report('2 broker outage and session loss', { outage_s: OUTAGE_S, scored_while_down: scoredWhileDown, backlog_delivered_ms: backlogMs, ...loss });
  expect(scoredWhileDown).toBeGreaterThan(0);
  expect(loss.not_exactly_one_row).toBe(0);
  expect(loss.verdicts_missing_at_subscriber).toBe(0);
  expect(loss.seq_order_violations).toBe(0);
});

/**
 * A broker restart that loses every session; the line's subscriber is back only after the daemon.
 * `inFlight`: the broker is frozen while the daemon publishes a verdict, then killed — mqtt.js
 * would re-send that verdict the instant it reconnects. Else the verdict is scored just after the
 * reconnect, with nothing waiting. Either way it must reach the subscriber.
 */
async function heldAfterRestart(inFlight: boolean): Promise<void> {
  const dir = tempDir('xray-qc-hold-');
  const port = await freePort();
  const first = new Mosquitto(port, brokerConfig(join(dir, 'a'), port), true);
  await first.start();
  cleanups.push(() => first.stop('SIGKILL'));
  const early = new WitnessSub(port, undefined, `early-${process.pid}`);
  await early.start();
  cleanups.push(() => early.stop());
  const station = makeStation({ port, settleMs: 100, extra: '  keepalive_s: 60\n  reconnect_max_ms: 400\n  resend_delay_ms: 5000\n' });
  const daemon = new DaemonProcess(station.config);
  cleanups.push(() => daemon.stop('SIGKILL'));
  daemon.start();
  await daemon.waitFor(/connected to MQTT broker/);
  await writeFile(join(station.captures, 'h-0.tif'), capture(40_000));
  await until(() => delivered(station.db, 1, early), 30_000, 'the first verdict');
  await early.stop();
  if (inFlight) {
    first.pause(true);
    await writeFile(join(station.captures, 'h-1.tif'), capture(40_001));
    await until(() => auditRows(station.db).length === 2, 10_000, 'the second capture scored');
    await sleep(500); // published; the frozen broker never acknowledges it
  }
  await first.stop('SIGKILL');
  const fresh = new Mosquitto(port, brokerConfig(join(dir, 'b'), port), true);
  await fresh.start();
  cleanups.push(() => fresh.stop());
  const connects = () => daemon.output.match(/connected to MQTT broker/g)?.length ?? 0;
  await until(() => connects() === 2, 10_000, 'the daemon back on the restarted broker');
  const backAt = Date.now();
  if (!inFlight) {
    await writeFile(join(station.captures, 'h-1.tif'), capture(40_001));
    await until(() => auditRows(station.db).length === 2, 10_000, 'the second capture scored');
  }
  await sleep(300); // mqtt.js re-sends its in-flight messages at once: let that happen first
  const late = new WitnessSub(port, undefined, `late-${process.pid}`);
  await late.start();
  cleanups.push(() => late.stop());
  const subscribedAfterMs = Date.now() - backAt;
  const second = auditRows(station.db)[1];
  await until(() => late.verdicts().some((v) => v.id === second.id), 20_000, 'the second verdict at the late subscriber');
  report(`2b verdict ${inFlight ? 'in flight' : 'scored'} across a session-losing restart`, { resend_delay_ms: 5000, subscribed_after_ms: subscribedAfterMs, late_got: late.verdicts().map((v) => v.seq) });
  expect(subscribedAfterMs).toBeLessThan(5000); // else this run did not test the hold
  expect(late.verdicts().map((v) => v.id)).toContain(second.id);
}

describe('a restart that lost the sessions: verdicts wait resend_delay_ms for subscribers to come back', () => {
  it('a verdict scored right after the reconnect', () => heldAfterRestart(false));
  it('a verdict in flight when the broker died', () => heldAfterRestart(true));
});

describe('brokers that refuse us (fault 7): a clear error, back-off, scoring goes on', () => {
  /** Runs a daemon against `conf` for `windowMs` with three captures; counts its connection attempts. */
  async function refused(name: string, conf: (port: number, dir: string) => { file: string; extra: string; env?: Record<string, string>; tls?: boolean }, expected: RegExp): Promise<void> {
    const dir = tempDir('xray-qc-refuse-');
    chmodSync(dir, 0o755); // mosquitto, started as root, runs as its own user and reads these files
    const port = await freePort();
    const c = conf(port, dir);
    const broker = new Mosquitto(port, c.file, false);
    await broker.start();
    cleanups.push(() => broker.stop());
    const station = makeStation({ port, settleMs: 200, extra: c.extra });
    if (c.tls) writeFileSync(station.config, readFileSync(station.config, 'utf8').replace('url: mqtt://', 'url: mqtts://'));
    const daemon = new DaemonProcess(station.config, c.env ?? {});
    cleanups.push(() => daemon.stop('SIGKILL'));
    daemon.start();
    await daemon.waitFor(/watching the capture folder/);
    const t0 = Date.now();
    for (let i = 0; i < 3; i++) await writeFile(join(station.captures, `r-${i}.tif`), capture(30_000 + i));
    await until(() => auditRows(station.db).length === 3, 30_000, 'three captures scored while refused');
    await sleep(Math.max(0, 15_000 - (Date.now() - t0)));
    const attempts = (daemon.output.match(/MQTT: .*retrying in \d+ ms/g) ?? []);
    const delays = attempts.map((l) => Number(/retrying in (\d+) ms/.exec(l)![1]));
    expect(daemon.output).toMatch(expected);
    expect(daemon.output).not.toMatch(/wrong-password/);
    const rows = auditRows(station.db);
    report(`7 MQTT ${name}`, { window_s: 15, connection_attempts: attempts.length, retry_delays_ms: delays, scored: rows.length, unpublished: rows.filter((r) => r.published_at === null).length, error: expected.exec(daemon.output)?.[0] });
    expect(rows.every((r) => r.published_at === null)).toBe(true);
    expect(attempts.length).toBeLessThanOrEqual(8); // 200 ms doubling: ~7 in 15 s; a fixed 200 ms would be ~75
    expect(delays.every((d, i) => i === 0 || d >= delays[i - 1])).toBe(true);
    await daemon.stop();
    await rm(dir, { recursive: true, force: true });
  }

  it('wrong credentials', async () => {
    await refused('wrong credentials', (port, dir) => {
      const passwd = join(dir, 'passwd');
      execFileSync('mosquitto_passwd', ['-b', '-c', passwd, 'line', 'right-password']);
      chmodSync(passwd, 0o644);
      const file = join(dir, 'mosquitto.conf');
      writeFileSync(file, `listener ${port} 127.0.0.1\nallow_anonymous false\npassword_file ${passwd}\n`);
      return { file, extra: '  username: line\n', env: { XRAY_QC_MQTT_PASSWORD: 'wrong-password' } };
    }, /broker refused the connection: [^"]*/);
  });

  it('a TLS certificate that is not trusted', async () => {
    await refused('TLS untrusted certificate', (port, dir) => {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
        '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
      chmodSync(join(dir, 'key.pem'), 0o644);
      const file = join(dir, 'mosquitto.conf');
      writeFileSync(file, `listener ${port} 127.0.0.1\nallow_anonymous true\ncertfile ${dir}/cert.pem\nkeyfile ${dir}/key.pem\n`);
      return { file, extra: '', tls: true };
    }, /TLS: self[- ]signed certificate[^"]*/);
  }, 60_000);

  it('a client id the broker does not accept', async () => {
    await refused('refused client id', (port, dir) => {
      const file = join(dir, 'mosquitto.conf');
      writeFileSync(file, `listener ${port} 127.0.0.1\nallow_anonymous true\nclientid_prefixes line-\n`);
      return { file, extra: '' };
    }, /broker refused the connection: [^"]*/);
  });
});
