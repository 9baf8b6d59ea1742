import { createHash } from 'node:crypto';
import { cpSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, jsonLines, tempDir } from './helpers.js';
import { encodeTiff16 } from '../src/tools/tiff-writer.js';
import { synthElectrode } from '../src/tools/synth.js';

/**
 * `xray-qc models install BUNDLE_DIR`: the first model onto a station, through the checks model
 * sync makes (signature where sync requires one, version, fitness, every file's sha256, the graph
 * in ONNX Runtime, golden samples); and the fitness rule at `models activate` / `models shadow`.
 */

describe('models install and the fitness rule at the station', () => {
  let root: string;
  let tiny: string;
  let config: string;
  let repo: string;

  /** A copy of the tiny demo bundle with its manifest changed (no signature: the manifest is rewritten). */
  function variant(name: string, patch: Record<string, unknown>): string {
    const dir = join(root, name);
    cpSync(tiny, dir, { recursive: true });
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...m, ...patch }, null, 2));
    return dir;
  }

  const models = (...args: string[]) => cli(['models', ...args, '--config', config]);
  const listed = () => jsonLines<{ folder: string; active: boolean; fit: boolean | null }>(models('list', '--json').stdout);
  const staged = () => (existsSync(join(repo, '.staging')) ? readdirSync(join(repo, '.staging')) : []);

  beforeAll(() => {
    root = tempDir('xray-qc-install-');
    tiny = join(root, 'tiny');
    expect(cli(['model', 'demo', '--tiny', '--out', tiny]).code).toBe(0);
    repo = join(root, 'models');
    config = join(root, 'config.yaml');
    writeFileSync(config, 'station_id: s1\ncapture:\n  dir: ./captures\nmodel:\n  dir: ./models\ndatabase:\n  path: ./audit.db\nmqtt:\n  url: mqtt://127.0.0.1:1\n');
  });

  it('installs the first bundle into an empty model.dir and makes it active; installing it again changes nothing', () => {
    const r = models('install', tiny);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ installed: 'electrode-resnet34-tiny-v1', active: true, signature: 'none', golden: 'none in the bundle' });
    expect(readFileSync(join(repo, 'active'), 'utf8').trim()).toBe('electrode-resnet34-tiny-v1');
    expect(listed()).toEqual([expect.objectContaining({ folder: 'electrode-resnet34-tiny-v1', active: true })]);
    const again = models('install', tiny);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ already: true, active: true });
    expect(staged()).toEqual([]);
  });

  it('refuses a bundle that failed the fitness rule, then installs it with --force, but never activates it without --force', () => {
    const unfit = variant('unfit', { version: 2, fit: false, metrics: { fitness: { reason: 'held-out BA 0.48 [0.31, 0.66] on 24' } } });
    const r = models('install', unfit);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^xray-qc models install: SYNC_MODEL_UNFIT: electrode-resnet34-tiny v2 failed the fitness rule .*held-out BA 0\.48.*--force installs it anyway\n$/);
    expect(listed().map((e) => e.folder)).toEqual(['electrode-resnet34-tiny-v1']);
    const forced = models('install', unfit, '--force');
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ installed: 'electrode-resnet34-tiny-v2', active: false, fit: false });
    const activate = models('activate', '2');
    expect(activate.code).toBe(2);
    expect(activate.stderr).toMatch(/MODEL_UNFIT: .*fit: false.*--force activates it anyway/);
    const shadow = models('shadow', '2');
    expect(shadow.code).toBe(2);
    expect(shadow.stderr).toMatch(/MODEL_UNFIT/);
    expect(readFileSync(join(repo, 'active'), 'utf8').trim()).toBe('electrode-resnet34-tiny-v1');
    expect(models('list').stdout).toMatch(/^ !  electrode-resnet34-tiny-v2 .* failed the fitness rule$/m);
    expect(models('activate', '2', '--force').code).toBe(0);
    expect(readFileSync(join(repo, 'active'), 'utf8').trim()).toBe('electrode-resnet34-tiny-v2');
    expect(models('activate', '1').code).toBe(0);
  });

  it('refuses what sync refuses: an older version, a file whose sha256 differs, a golden sample that scores otherwise — nothing left behind', () => {
    const other = variant('other', { created_at: '2026-01-01T00:00:00Z' }); // v1 again, but not the v1 installed
    const o = models('install', other);
    expect(o.code).toBe(2);
    expect(o.stderr).toMatch(/SYNC_VERSION_REFUSED: electrode-resnet34-tiny-v1 is already installed with another manifest/);

    const tampered = variant('tampered', { version: 3 });
    const onnx = readFileSync(join(tampered, 'model.onnx'));
    onnx[onnx.length - 1] ^= 0xff;
    writeFileSync(join(tampered, 'model.onnx'), onnx);
    const t = models('install', tampered);
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/SYNC_DOWNLOAD_FAILED: MODEL_FILE_MISMATCH: .*sha256/);

    const golden = variant('golden', { version: 4 });
    const img = synthElectrode(3, null, { width: 120, height: 220 });
    const tif = join(root, 'g.tif');
    writeFileSync(tif, encodeTiff16(img.width, img.height, img.data));
    expect(cli(['model', 'golden', golden, tif]).code).toBe(0);
    const expected = JSON.parse(readFileSync(join(golden, 'golden', 'expected.json'), 'utf8')) as { files: Record<string, number> };
    expected.files['g.tif'] = expected.files['g.tif'] > 0.5 ? 0.01 : 0.99;
    writeFileSync(join(golden, 'golden', 'expected.json'), JSON.stringify(expected));
    // relist the edited file, as a training host that scored differently would have
    const m = JSON.parse(readFileSync(join(golden, 'manifest.json'), 'utf8')) as { files: Record<string, { sha256: string; bytes: number }> };
    const bytes = readFileSync(join(golden, 'golden', 'expected.json'));
    m.files['golden/expected.json'] = { sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length };
    writeFileSync(join(golden, 'manifest.json'), JSON.stringify(m, null, 2));
    const g = models('install', golden);
    expect(g.code).toBe(2);
    expect(g.stderr).toMatch(/SYNC_GOLDEN_MISMATCH: golden\/g\.tif: p_abnormal .* differs/);

    expect(listed().map((e) => e.folder)).toEqual(['electrode-resnet34-tiny-v1', 'electrode-resnet34-tiny-v2']);
    expect(staged()).toEqual([]);
  });

  it('with sync requiring signatures, an unsigned bundle is refused and a signed one installs', () => {
    const keys = join(root, 'keys');
    expect(cli(['model', 'keygen', '--out', keys]).code).toBe(0);
    const signedConfig = join(root, 'signed.yaml');
    writeFileSync(signedConfig, `${readFileSync(config, 'utf8')}sync:\n  url: http://127.0.0.1:1/\n  allow_insecure_http: true\n  trusted_keys: [${join(keys, 'public.pem')}]\n`);
    const v5 = variant('v5', { version: 5 });
    const unsigned = cli(['models', 'install', v5, '--config', signedConfig]);
    expect(unsigned.code).toBe(2);
    expect(unsigned.stderr).toMatch(/SYNC_SIGNATURE_INVALID: the manifest is not signed/);
    expect(cli(['model', 'sign', '--key', join(keys, 'private.pem'), v5]).code).toBe(0);
    const signed = cli(['models', 'install', v5, '--config', signedConfig]);
    expect(signed.code, signed.stderr).toBe(0);
    expect(JSON.parse(signed.stdout)).toMatchObject({ installed: 'electrode-resnet34-tiny-v5', signature: 'verified', active: false });
    const v7 = variant('v7', { version: 7 });
    expect(cli(['model', 'sign', '--key', join(keys, 'private.pem'), v7]).code).toBe(0);
    const activated = cli(['models', 'install', v7, '--activate', '--config', signedConfig]);
    expect(JSON.parse(activated.stdout)).toMatchObject({ installed: 'electrode-resnet34-tiny-v7', active: true });
    const v6 = variant('v6', { version: 6 }); // older than the active v7: sync would never install it
    expect(cli(['model', 'sign', '--key', join(keys, 'private.pem'), v6]).code).toBe(0);
    const old = cli(['models', 'install', v6, '--config', signedConfig]);
    expect(old.code).toBe(2);
    expect(old.stderr).toMatch(/SYNC_VERSION_REFUSED: v6 is not newer than the active v7 .*--force installs it anyway/);
    expect(cli(['models', 'install', v6, '--force', '--config', signedConfig]).code).toBe(0);
  });
});
