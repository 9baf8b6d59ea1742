import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cli, ROOT, tempDir } from './helpers.js';
import Sqlite from '../src/record/sqlite.js';
import { DaemonProcess, freePort, makeStation, Mosquitto, notifyListener, until } from './station.js';

const cleanups: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A mosquitto on a free port, stopped after the test. */
async function startBroker(): Promise<{ port: number; broker: Mosquitto }> {
  const port = await freePort();
  const broker = new Mosquitto(port);
  await broker.start();
  cleanups.push(() => broker.stop());
  return { port, broker };
}

describe('systemd integration (a real NOTIFY_SOCKET)', () => {
  it('sends READY=1 once started, WATCHDOG=1 periodically, STOPPING=1 on SIGTERM, then exits 0', async () => {
    const { port, broker } = await startBroker();
    const station = makeStation({ port });
    const notify = await notifyListener(join(station.root, 'notify.sock'), cleanups);
    const daemon = new DaemonProcess(station.config, { NOTIFY_SOCKET: notify.socketPath, WATCHDOG_USEC: '600000' });
    cleanups.push(() => daemon.stop('SIGKILL'));
    daemon.start();
    await until(() => /READY=1/.test(notify.heard), 30_000, 'READY=1');
    expect(notify.heard).toMatch(/READY=1\|STATUS=scored 0/);
    // READY comes after the database, the model and the watcher
    expect(daemon.output).toMatch(/watching the capture folder/);
    await until(() => (notify.heard.match(/WATCHDOG=1/g) ?? []).length >= 3, 10_000, 'three WATCHDOG=1');
    expect(await daemon.stop('SIGTERM')).toBe(0);
    await until(() => /STOPPING=1/.test(notify.heard), 5000, 'STOPPING=1');
    const lines = notify.heard.trim().split('\n');
    expect(lines.findIndex((l) => l.startsWith('READY=1'))).toBeLessThan(lines.findIndex((l) => l.includes('STOPPING=1')));
  });
});

describe('configuration', () => {
  it('the example config.yaml is valid against the schema', async () => {
    const { loadConfig } = await import('../src/service/config.js');
    expect(() => loadConfig(join(ROOT, 'config.yaml'), {})).not.toThrow();
  });

  it('run --check checks what run needs: model repository, folders, keys, sync URL; the broker is a warning', async () => {
    const { port, broker } = await startBroker();
    const station = makeStation({ port });
    const base = readFileSync(station.config, 'utf8');
    const check = (name: string, edit: (yaml: string) => string): { code: number; stdout: string; stderr: string } => {
      const file = join(station.root, `${name}.yaml`);
      writeFileSync(file, edit(base));
      return cli(['run', '--check', '--config', file]);
    };
    const ok = check('ok', (y) => y);
    // the one warning: what the line must know of the active model (the tiny test demo is untrained)
    expect(ok.stderr).toBe('warning: model.dir: the active model electrode-resnet34-tiny v1 is the UNTRAINED demo model: its verdicts mean nothing\n');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/ok\.yaml: ok\n$/);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(station.root, 'empty-models'));
    const cases: Array<[string, (y: string) => string, RegExp]> = [
      ['no-models', (y) => y.replace('dir: ./models', 'dir: ./missing-models'), /^model\.dir: \S+missing-models does not exist$/m],
      ['empty-models', (y) => y.replace('dir: ./models', 'dir: ./empty-models'), /^model\.dir: \S+empty-models is empty: put a bundle there .* or configure sync$/m],
      ['no-captures', (y) => y.replace('dir: ./captures', 'dir: ./missing-captures'), /^capture\.dir: \S+missing-captures does not exist$/m],
      ['no-key', (y) => `${y}sync:\n  url: https://registry.example/xray\n  trusted_keys: [./keys/nope.pem]\n`, /^sync\.trusted_keys: \S+nope\.pem: no such file$/m],
      ['plain-http', (y) => `${y}sync:\n  url: http://registry.example/xray\n  require_signature: false\n`, /^sync\.url: plain http to registry\.example refused/m],
    ];
    for (const [name, edit, want] of cases) {
      const r = check(name, edit);
      expect(r.code, `${name}: ${r.stderr}`).toBe(2);
      expect(r.stderr, name).toMatch(want);
      expect(r.stderr, name).toMatch(/: 1 error: run would fail\n$/);
    }
    // with sync, an empty folder is the first-model case: a warning, not an error
    const waiting = check('waiting', (y) => `${y.replace('dir: ./models', 'dir: ./empty-models')}sync:\n  url: http://127.0.0.1:9/xray\n  require_signature: false\n`);
    expect(waiting.code, waiting.stderr).toBe(0);
    expect(waiting.stderr).toMatch(/^warning: model\.dir: \S+empty-models is empty: the station will wait for its first model from http:\/\/127\.0\.0\.1:9\/xray$/m);
    await broker.stop();
    const noBroker = check('no-broker', (y) => y);
    expect(noBroker.code, noBroker.stderr).toBe(0);
    expect(noBroker.stderr).toMatch(new RegExp(`^warning: mqtt\\.url: mqtt://127\\.0\\.0\\.1:${port} did not answer within 3 s \\(.+\\); the station runs without it`, 'm'));
  });

  it('errors print `path: message` lines and exit non-zero', () => {
    const dir = tempDir();
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, `station_id: "bad id!"
capture:
  dir: ./c
  settle_ms: -5
  colour: blue
model:
  dir: ./m
  providers: [gpu]
database: {}
mqtt:
  url: http://example
`);
    const r = cli(['run', '--config', file]);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    for (const want of [/^station_id: /, /^capture\.settle_ms: /, /^capture: .*colour/, /^model\.providers\.0: /, /^database\.path: /, /^mqtt\.url: must be mqtt/]) {
      expect(lines.some((l) => want.test(l)), `${want} in\n${r.stderr}`).toBe(true);
    }
  });

  it('a missing secret, a YAML syntax error and a missing file are reported the same way', () => {
    const dir = tempDir();
    const file = join(dir, 'c.yaml');
    writeFileSync(file, 'station_id: s1\ncapture: {dir: ./c}\nmodel: {dir: ./m}\ndatabase: {path: ./a.db}\nmqtt: {url: "mqtt://localhost", username: line}\n');
    const r = cli(['run', '--config', file], { env: { XRAY_QC_MQTT_PASSWORD: '' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^mqtt\.password_env: neither environment variable XRAY_QC_MQTT_PASSWORD nor credential mqtt-password in \$CREDENTIALS_DIRECTORY is set/);
    writeFileSync(join(dir, 'y.yaml'), 'station_id: s1\ncapture:\n  dir: [unclosed\nmodel: {dir: ./m}\n');
    const yaml = cli(['run', '--config', join(dir, 'y.yaml')]);
    expect(yaml.code).toBe(2);
    // the whole message: where, what, and the offending lines (it used to stop at "…column 1:")
    expect(yaml.stderr).toMatch(/^\(yaml\) \S*y\.yaml:4:1: Flow sequence in block collection must be sufficiently indented and end with a \] at line 4, column 1\n/);
    expect(yaml.stderr).toContain('\n      dir: [unclosed\n');
    const missing = cli(['run', '--config', join(dir, 'nope.yaml')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/nope\.yaml: ENOENT/);
  });

  it('a daemon whose model cannot load records why and exits non-zero (systemd restarts it)', async () => {
    const port = await freePort();
    const station = makeStation({ port });
    writeFileSync(join(station.models, 'active'), 'missing-bundle\n');
    const daemon = new DaemonProcess(station.config);
    daemon.start();
    const code = await new Promise<number | null>((resolve) => daemon.proc!.once('exit', (c) => resolve(c)));
    expect(code).toBe(1);
    expect(daemon.output).toMatch(/MODEL_NOT_FOUND/);
    const db = new Sqlite(station.db, { readonly: true });
    const events = db.prepare('SELECT kind, message FROM events ORDER BY id').all() as Array<{ kind: string; message: string }>;
    db.close();
    // MQTT starts before the model: no broker runs here, so its attempts are events as well
    const own = events.filter((e) => e.kind !== 'broker');
    expect(own.map((e) => e.kind)).toEqual(['start', 'error', 'stop']);
    expect(own[1].message).toMatch(/MODEL_NOT_FOUND/);
  });
});

describe('the CLI and the station config', () => {
  it('score --config scores with the station\'s active model and says which (and preprocess takes --config)', async () => {
    const station = makeStation({ port: 1 });
    const { encodeTiff16 } = await import('../src/tools/tiff-writer.js');
    const { synthElectrode } = await import('../src/tools/synth.js');
    const img = synthElectrode(3, null, { width: 240, height: 440 });
    const file = join(station.root, 'one.tif');
    writeFileSync(file, encodeTiff16(img.width, img.height, img.data, { compression: 'deflate' }));
    const r = cli(['score', '--json', '--config', station.config, file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`^model: electrode-resnet34-tiny v1 \\(${join(station.models, 'tiny-v1').replace(/[/.]/g, '\\$&')}, onnx sha256 [0-9a-f]{12}…, cpu\\)\n`));
    expect(r.stderr).not.toContain('using the demo model');
    expect(JSON.parse(r.stdout)).toMatchObject({ file, model: { name: 'electrode-resnet34-tiny', version: 1 } });
    const png = cli(['preprocess', '--config', station.config, '--png', join(station.root, 'v.png'), file]);
    expect(png.code, png.stderr).toBe(0);
  });
});

describe('MQTT refusals', () => {
  it('wrong credentials: a clear error, an events row, retries with back-off, scoring goes on', async () => {
    const { execFileSync } = await import('node:child_process');
    const port = await freePort();
    const dir = tempDir();
    const passwd = join(dir, 'passwd');
    execFileSync('mosquitto_passwd', ['-b', '-c', passwd, 'line', 'right-password']);
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous false\npassword_file ${passwd}\n`);
    // run as root, mosquitto drops to its own user: it must be able to read both files
    const { chmodSync } = await import('node:fs');
    chmodSync(dir, 0o755);
    chmodSync(passwd, 0o644);
    const broker = new Mosquitto(port, conf);
    await broker.start();
    cleanups.push(() => broker.stop());
    const station = makeStation({ port, extra: '' });
    writeFileSync(station.config, readFileSync(station.config, 'utf8').replace('  reconnect_ms: 200\n', '  reconnect_ms: 200\n  username: line\n'));
    const daemon = new DaemonProcess(station.config, { XRAY_QC_MQTT_PASSWORD: 'wrong-password' });
    cleanups.push(() => daemon.stop('SIGKILL'));
    daemon.start();
    await daemon.waitFor(/watching the capture folder/);
    writeFileSync(join(station.captures, 'a.tif'), Buffer.from('II*\0 not much of a capture'));
    await daemon.waitFor(/retrying in 800 ms/, 20_000); // 200, 400, 800: exponential back-off
    await until(() => {
      const db = new Sqlite(station.db, { readonly: true });
      try {
        return (db.prepare('SELECT count(*) AS n FROM inspections').get() as { n: number }).n === 1;
      } finally {
        db.close();
      }
    }, 20_000, 'the capture recorded while the broker refuses us');
    const db = new Sqlite(station.db, { readonly: true });
    const events = db.prepare("SELECT message FROM events WHERE kind = 'broker'").all() as Array<{ message: string }>;
    const unpublished = (db.prepare('SELECT count(*) AS n FROM inspections WHERE published_at IS NULL').get() as { n: number }).n;
    db.close();
    expect(events).toHaveLength(1); // one row per reason, not one per attempt
    expect(events[0].message).toMatch(/broker refused the connection: .*(Not authorized|Bad username or password).*code [45]/i);
    expect(unpublished).toBe(1);
    expect(daemon.output).not.toMatch(/wrong-password/); // the secret is never logged
  });
});
