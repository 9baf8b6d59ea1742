import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, readdirSync, truncateSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Sqlite from '../src/record/sqlite.js';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBundle } from '../src/model/bundle.js';
import { buildResNet34 } from '../src/model/demo/resnet.js';
import { packBundle, PACK_DEFAULTS } from '../src/model/pack.js';
import { readActive } from '../src/model/repository.js';
import { ScoringSession } from '../src/cli/scoring.js';
import { addGolden } from '../src/sync/golden.js';
import { publish } from '../src/sync/registry.js';
import { keygen, signBundle } from '../src/sync/signing.js';
import { encodeTiff16 } from '../src/tools/tiff-writer.js';
import { synthElectrode } from '../src/tools/synth.js';
import { CLI, cli, tempDir } from './helpers.js';
import { DaemonProcess, freePort, makeStation, Mosquitto, sleep, Subscriber, until } from './station.js';
import { oddModel } from './tools/odd-models.js';

const NAME = 'electrode-resnet34-tiny'; // the tiny demo model's name: v1 is in every station

function capture(seed: number): Buffer {
  const img = synthElectrode(seed, seed % 3 === 0 ? 'smudge' : null, { width: 240, height: 440 });
  return encodeTiff16(img.width, img.height, img.data, { compression: 'deflate' });
}

interface Release { dir: string; sha256: string }

describe('model sync from a registry', () => {
  let work: string;
  let registry: string;
  let keys: { privateKey: string; publicKey: string };
  let otherKeys: { privateKey: string; publicKey: string };
  let regPort: number;
  let server: ReturnType<typeof spawn>;
  let goldenFiles: string[];
  let broker: Mosquitto;

  async function release(version: number, o: { seed?: number; onnx?: Uint8Array; golden?: boolean; height?: number; sign?: 'trusted' | 'other' | 'none'; fit?: boolean } = {}): Promise<Release> {
    const dir = join(work, `release-v${version}-${Math.random().toString(36).slice(2, 8)}`);
    mkdirSync(dir, { recursive: true });
    const onnx = join(dir, 'in.onnx');
    writeFileSync(onnx, o.onnx ?? buildResNet34({ height: 128, width: 64, baseChannels: 4, seed: o.seed ?? version * 7 }));
    await packBundle({ ...PACK_DEFAULTS, onnx, out: dir, name: NAME, version, bounds: { min: 1700, max: 2800 }, reviewBand: null, height: o.height ?? 128, width: 64, fit: o.fit });
    if (o.golden) {
      const session = await ScoringSession.open(dir);
      await addGolden(dir, (file) => session.score(file), goldenFiles);
      await session.close();
    }
    if ((o.sign ?? 'trusted') !== 'none') await signBundle(dir, o.sign === 'other' ? otherKeys.privateKey : keys.privateKey);
    return { dir, sha256: (await loadBundle(dir)).modelSha256 };
  }

  beforeAll(async () => {
    work = tempDir('xray-qc-sync-');
    registry = join(work, 'registry');
    keys = await keygen(join(work, 'keys'));
    otherKeys = await keygen(join(work, 'other-keys'));
    goldenFiles = [0, 1].map((i) => {
      const f = join(work, `golden-${i}.tif`);
      writeFileSync(f, capture(900 + i));
      return f;
    });
    mkdirSync(registry, { recursive: true });
    regPort = await freePort();
    server = spawn(process.execPath, [CLI, 'registry', 'serve', '--registry', registry, '--port', String(regPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => server.stdout!.once('data', () => resolve()));
    broker = new Mosquitto(await freePort());
    await broker.start();
  });
  afterAll(async () => {
    server?.kill();
    await broker?.stop();
  });

  function station(): { s: ReturnType<typeof makeStation>; daemon: DaemonProcess } {
    const s = makeStation({
      port: broker.port,
      extra: `sync:\n  url: http://127.0.0.1:${regPort}\n  interval_s: 1\n  trusted_keys: [${keys.publicKey}]\n`,
    });
    writeFileSync(s.config, readFileSync(s.config, 'utf8').replace('model:\n  dir: ./models\n', 'model:\n  dir: ./models\n  fallback_after: 3\n'));
    return { s, daemon: new DaemonProcess(s.config) };
  }

  function dbRows(db: string, sql: string): Array<Record<string, unknown>> {
    const d = new Sqlite(db, { readonly: true });
    try {
      return d.prepare(sql).all() as Array<Record<string, unknown>>;
    } finally {
      d.close();
    }
  }

  async function cmdSync(correlation: string): Promise<Record<string, unknown>> {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`);
    try {
      const got = new Promise<Record<string, unknown>>((resolve) => {
        c.on('message', (_t, p) => {
          const m = JSON.parse(p.toString()) as Record<string, unknown>;
          if (m.correlation_id === correlation) resolve(m);
        });
      });
      await c.subscribeAsync('xray-qc/xray-1/cmd/sync/result', { qos: 1 });
      await c.publishAsync('xray-qc/xray-1/cmd/sync', JSON.stringify({ correlation_id: correlation }), { qos: 1 });
      return await Promise.race([got, sleep(60_000).then(() => ({ result: 'timeout' }))]);
    } finally {
      await c.endAsync();
    }
  }

  it('a signed v2 with golden samples is activated between captures: none lost, none twice, later rows carry v2', async () => {
    const { s, daemon } = station();
    const sub = new Subscriber(broker.port);
    await sub.start();
    try {
      daemon.start();
      await daemon.waitFor(/watching the capture folder/);
      const v1 = (await loadBundle(join(s.models, 'tiny-v1'))).modelSha256;
      let n = 0;
      const drop = async (count: number): Promise<void> => {
        for (let i = 0; i < count; i++, n++) {
          writeFileSync(join(s.captures, `c-${String(n).padStart(3, '0')}.tif`), capture(n));
          await sleep(60);
        }
      };
      await drop(10);
      const v2 = await release(2, { golden: true });
      expect(cli(['registry', 'publish', '--registry', registry, v2.dir]).code).toBe(0);
      const dropping = drop(30);
      await daemon.waitFor(/model activated/, 30_000);
      await dropping;
      await drop(5);
      await until(() => sub.verdicts.length >= n, 60_000, `${n} verdicts`);
      const rows = dbRows(s.db, 'SELECT file_path, model_sha256, model_version FROM inspections ORDER BY seq');
      expect(rows).toHaveLength(n);
      expect(new Set(rows.map((r) => r.file_path)).size).toBe(n);
      const firstV2 = rows.findIndex((r) => r.model_sha256 === v2.sha256);
      expect(firstV2).toBeGreaterThan(0);
      expect(rows.slice(0, firstV2).every((r) => r.model_sha256 === v1)).toBe(true);
      expect(rows.slice(firstV2).every((r) => r.model_sha256 === v2.sha256 && r.model_version === 2)).toBe(true);
      const bySeq = new Map(sub.verdicts.map((v) => [v.id, v as unknown as { model: { sha256: string } }]));
      const last = dbRows(s.db, 'SELECT id FROM inspections ORDER BY seq DESC LIMIT 1')[0].id as string;
      expect(bySeq.get(last)?.model.sha256).toBe(v2.sha256);
      expect(await readActive(s.models)).toBe(`${NAME}-v2`);
      const models = dbRows(s.db, 'SELECT version, activated_at, deactivated_at FROM models ORDER BY version');
      expect(models.map((m) => [m.version, m.deactivated_at === null])).toEqual([[1, false], [2, true]]);

      // ------ every refusal leaves v2 serving and names its step ------
      const cases: Array<[string, () => Promise<void>, string]> = [
        ['unsigned manifest', async () => { await publish((await release(3, { sign: 'none' })).dir, registry, 'stable'); }, 'signature'],
        ['untrusted key', async () => { await publish((await release(3, { sign: 'other' })).dir, registry, 'stable'); }, 'signature'],
        ['manifest edited after signing', async () => {
          await publish((await release(3)).dir, registry, 'stable');
          const m = join(registry, NAME, '3', 'manifest.json');
          writeFileSync(m, readFileSync(m, 'utf8').replace('"threshold": 0.5', '"threshold": 0.99'));
        }, 'signature'],
        ['model file altered', async () => {
          await publish((await release(3)).dir, registry, 'stable');
          const f = join(registry, NAME, '3', 'model.onnx');
          const b = readFileSync(f);
          b[b.length - 100] ^= 0xff;
          writeFileSync(f, b);
        }, 'download'],
        ['truncated download', async () => {
          await publish((await release(3)).dir, registry, 'stable');
          const f = join(registry, NAME, '3', 'model.onnx');
          truncateSync(f, readFileSync(f).length - 1000);
        }, 'download'],
        ['more bytes than the manifest says', async () => {
          await publish((await release(3)).dir, registry, 'stable');
          appendFileSync(join(registry, NAME, '3', 'model.onnx'), Buffer.alloc(5000, 1));
        }, 'download'],
        ['an older version', async () => { await publish((await release(1, { seed: 99 })).dir, registry, 'stable'); }, 'version'],
        ['wrong input shape', async () => { await publish((await release(3, { height: 256 })).dir, registry, 'stable'); }, 'load'],
        ['golden sample mismatch', async () => {
          const r = await release(3, { golden: true, sign: 'none' });
          const e = join(r.dir, 'golden', 'expected.json');
          const g = JSON.parse(readFileSync(e, 'utf8')) as { files: Record<string, number> };
          for (const k of Object.keys(g.files)) g.files[k] = Math.min(1, g.files[k] + 0.05);
          writeFileSync(e, JSON.stringify(g));
          // re-list the edited file so only the golden check can object, then sign
          const m = JSON.parse(readFileSync(join(r.dir, 'manifest.json'), 'utf8')) as { files: Record<string, { sha256: string; bytes: number }> };
          const { sha256File } = await import('../src/model/bundle.js');
          m.files['golden/expected.json'] = { sha256: await sha256File(e), bytes: readFileSync(e).length };
          writeFileSync(join(r.dir, 'manifest.json'), JSON.stringify(m));
          await signBundle(r.dir, keys.privateKey);
          await publish(r.dir, registry, 'stable');
        }, 'golden'],
        ['a model that failed the fitness rule (fit: false)', async () => { await publish((await release(3, { fit: false })).dir, registry, 'stable'); }, 'fitness'],
        ['NaN outputs', async () => { await publish((await release(3, { onnx: oddModel('nan') })).dir, registry, 'stable'); }, 'load'],
      ];
      const codes: Record<string, string> = {
        pointer: 'SYNC_POINTER_INVALID', manifest: 'SYNC_MANIFEST_INVALID', signature: 'SYNC_SIGNATURE_INVALID', version: 'SYNC_VERSION_REFUSED',
        compatibility: 'SYNC_INCOMPATIBLE', fitness: 'SYNC_MODEL_UNFIT', download: 'SYNC_DOWNLOAD_FAILED', load: 'SYNC_LOAD_FAILED', golden: 'SYNC_GOLDEN_MISMATCH',
      };
      for (const [what, prepare, step] of cases) {
        await prepare();
        const r = await cmdSync(what);
        expect([what, r.result, r.step, r.code], JSON.stringify(r)).toEqual([what, 'refused', step, codes[step]]);
        const ev = dbRows(s.db, "SELECT message, data FROM events WHERE kind = 'sync' ORDER BY id DESC LIMIT 1")[0];
        expect(JSON.parse(ev.data as string).step, what).toBe(step);
        expect(ev.message, what).toContain(codes[step]);
        expect(await readActive(s.models), what).toBe(`${NAME}-v2`);
      }
      // still v2 after all of that
      writeFileSync(join(s.captures, 'after-refusals.tif'), capture(777));
      await until(() => dbRows(s.db, "SELECT 1 FROM inspections WHERE file_path LIKE '%after-refusals.tif'").length === 1, 20_000, 'a capture after the refusals');
      expect(dbRows(s.db, "SELECT model_sha256 FROM inspections WHERE file_path LIKE '%after-refusals.tif'")[0].model_sha256).toBe(v2.sha256);
      expect(readdirSync(join(s.models, '.staging'))).toEqual([]); // refused downloads are removed

      // ------ a good v4, then the operator rolls back to v2 in the running daemon ------
      const v4 = await release(4);
      await publish(v4.dir, registry, 'stable');
      expect((await cmdSync('v4')).result).toBe('activated');
      const act = cli(['models', 'activate', '2', '--config', s.config]);
      expect(act.code, act.stderr).toBe(0);
      await daemon.waitFor(/operator: active file changed/, 20_000);
      writeFileSync(join(s.captures, 'after-rollback.tif'), capture(778));
      await until(() => dbRows(s.db, "SELECT 1 FROM inspections WHERE file_path LIKE '%after-rollback.tif'").length === 1, 20_000, 'a capture after the rollback');
      expect(dbRows(s.db, "SELECT model_sha256 FROM inspections WHERE file_path LIKE '%after-rollback.tif'")[0].model_sha256).toBe(v2.sha256);
      const list = cli(['models', 'list', '--config', s.config, '--json']).stdout.trim().split('\n').map((l) => JSON.parse(l) as { folder: string; active: boolean });
      expect(list.find((e) => e.active)?.folder).toBe(`${NAME}-v2`);
      // the rollback sticks: interval checks do not re-install v4, nor does a cmd/sync request
      // (one did: it bypassed the hold) ...
      await sleep(3500);
      expect(await readActive(s.models)).toBe(`${NAME}-v2`);
      const held = await cmdSync('after rollback');
      expect([held.result, held.version], JSON.stringify(held)).toEqual(['held', 4]);
      await sleep(1500);
      expect(await readActive(s.models)).toBe(`${NAME}-v2`);
      // ... until the channel points to something new
      const v6 = await release(6);
      await publish(v6.dir, registry, 'stable');
      await until(() => dbRows(s.db, "SELECT 1 FROM models WHERE version = 6 AND activated_at IS NOT NULL").length === 1, 30_000, 'v6 activated by the interval check');
      expect(cli(['models', 'unhold', '--config', s.config]).stdout).toBe('no sync hold\n'); // an install lifts the hold
      // old versions beyond keep_versions (3) are pruned, never the active one or its predecessor
      const folders = readdirSync(s.models).filter((f) => f.startsWith(NAME)).sort();
      expect(folders).toEqual([`${NAME}-v2`, `${NAME}-v4`, `${NAME}-v6`]);
    } finally {
      await daemon.stop();
      await sub.stop();
    }
  });

  it('a model that fails K consecutive inferences falls back to the previous one', async () => {
    const { s, daemon } = station();
    try {
      const bad = await release(5, { onnx: oddModel('nan-on-real-input') });
      await publish(bad.dir, registry, 'stable');
      daemon.start();
      await daemon.waitFor(/model activated/, 30_000);
      for (let i = 0; i < 5; i++) writeFileSync(join(s.captures, `f-${i}.tif`), capture(600 + i));
      await daemon.waitFor(/automatic fallback/, 30_000);
      await until(() => dbRows(s.db, 'SELECT 1 FROM inspections').length >= 5, 30_000, '5 rows');
      const errors = dbRows(s.db, "SELECT reason FROM inspections WHERE verdict = 'error'");
      expect(errors.length).toBeGreaterThanOrEqual(3);
      expect(errors.every((e) => e.reason === 'INFER_NON_FINITE')).toBe(true);
      expect(await readActive(s.models)).toBe('tiny-v1');
      expect(dbRows(s.db, "SELECT 1 FROM events WHERE kind = 'fallback'")).toHaveLength(1);
      writeFileSync(join(s.captures, 'after-fallback.tif'), capture(650));
      await until(() => dbRows(s.db, "SELECT verdict FROM inspections WHERE file_path LIKE '%after-fallback.tif'").length === 1, 20_000, 'capture after fallback');
      expect(dbRows(s.db, "SELECT verdict FROM inspections WHERE file_path LIKE '%after-fallback.tif'")[0].verdict).not.toBe('error');
    } finally {
      await daemon.stop();
    }
  });

  it('a fresh station with sync and an empty models folder starts, says it waits, keeps captures queued and scores them with the first model sync installs', async () => {
    const { s, daemon } = station();
    const { rmSync } = await import('node:fs');
    rmSync(join(s.models, 'tiny-v1'), { recursive: true });
    writeFileSync(s.config, readFileSync(s.config, 'utf8').replace('  interval_s: 1\n', '  interval_s: 1\n  channel: first-model\n'));
    const sub = new Subscriber(broker.port);
    await sub.start();
    try {
      daemon.start();
      await daemon.waitFor(/watching the capture folder/, 30_000); // it used to exit MODEL_NOT_FOUND
      expect(daemon.output).toMatch(/no model yet: waiting for the first one from model sync/);
      await until(() => sub.status.some((x) => /^waiting for a model/.test(x.error ?? '')), 10_000, 'a status saying it waits for a model');
      for (let i = 0; i < 3; i++) writeFileSync(join(s.captures, `early-${i}.tif`), capture(820 + i));
      await sleep(2500);
      expect(dbRows(s.db, 'SELECT 1 FROM inspections')).toHaveLength(0);
      expect(dbRows(s.db, 'SELECT file_path FROM queue')).toHaveLength(3);
      const first = await release(20);
      await publish(first.dir, registry, 'first-model');
      await until(() => dbRows(s.db, 'SELECT 1 FROM inspections').length === 3, 30_000, 'the queued captures scored');
      const rows = dbRows(s.db, 'SELECT model_version, model_sha256, verdict FROM inspections ORDER BY seq');
      expect(rows.map((r) => [r.model_version, r.model_sha256])).toEqual([[20, first.sha256], [20, first.sha256], [20, first.sha256]]);
      expect(rows.every((r) => r.verdict !== 'error')).toBe(true);
      expect(await readActive(s.models)).toBe(`${NAME}-v20`);
      await until(() => sub.status.at(-1)?.error === null, 10_000, 'the waiting status cleared');
      expect(dbRows(s.db, 'SELECT how, previous FROM model_activations')).toEqual([{ how: 'model sync', previous: null }]);
    } finally {
      await daemon.stop();
      await sub.stop();
    }
  });

  it('sync.mode: shadow stages a new version as the shadow candidate: the active model keeps serving, the candidate scores while the line is idle', async () => {
    const { s, daemon } = station();
    writeFileSync(s.config, readFileSync(s.config, 'utf8').replace('  interval_s: 1\n', '  interval_s: 1\n  channel: shadowed\n  mode: shadow\n'));
    try {
      const next = await release(30);
      await publish(next.dir, registry, 'shadowed');
      daemon.start();
      await daemon.waitFor(/shadow candidate loaded/, 30_000);
      expect(await readActive(s.models)).toBe('tiny-v1');
      expect(readFileSync(join(s.models, 'shadow'), 'utf8').trim()).toBe(`${NAME}-v30`);
      for (let i = 0; i < 3; i++) {
        writeFileSync(join(s.captures, `sh-${i}.tif`), capture(840 + i));
        await sleep(700);
      }
      await until(() => dbRows(s.db, 'SELECT 1 FROM shadow_scores').length >= 1, 20_000, 'a shadow score');
      expect(new Set(dbRows(s.db, 'SELECT model_version FROM inspections').map((r) => r.model_version))).toEqual(new Set([1]));
      expect(new Set(dbRows(s.db, 'SELECT model_version FROM shadow_scores').map((r) => r.model_version))).toEqual(new Set([30]));
      // the next checks: up to date, not installed again
      const again = await cmdSync('after-shadow');
      expect(again).toMatchObject({ result: 'up-to-date', version: 30 });
      expect(String(again.message)).toMatch(/runs as the shadow candidate/);
      expect(dbRows(s.db, "SELECT 1 FROM events WHERE kind = 'shadow' AND message LIKE 'model sync staged%'")).toHaveLength(1);
    } finally {
      await daemon.stop();
    }
  });

  it('kill -9 during activation: after restart exactly one complete model is active and staging is clean', async () => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const { s, daemon } = station();
      const r = await release(10 + attempt, { golden: attempt === 0 });
      await publish(r.dir, registry, 'stable');
      daemon.start();
      // kill at a different moment each time: mid-download/verify, at activation, just after
      const marker = [join(s.models, '.staging', `${NAME}-v${10 + attempt}`), join(s.models, `${NAME}-v${10 + attempt}`), null][attempt];
      if (marker) await until(() => existsSync(marker), 30_000, `${marker}`);
      else await daemon.waitFor(/model activated/, 30_000);
      await daemon.stop('SIGKILL');
      const active = await readActive(s.models);
      expect([`tiny-v1`, `${NAME}-v${10 + attempt}`]).toContain(active);
      await loadBundle(join(s.models, active!)); // complete: every file's size and sha256 verify
      // restart without sync, so that only the start-up clean-up can touch the staging folder
      const noSync = join(s.root, 'nosync.yaml');
      writeFileSync(noSync, readFileSync(s.config, 'utf8').replace(/sync:\n(  .*\n)+/, ''));
      const again = new DaemonProcess(noSync);
      again.start();
      await again.waitFor(/watching the capture folder/, 30_000);
      expect(readdirSync(join(s.models, '.staging'))).toEqual([]);
      await again.stop();
    }
  });
});
