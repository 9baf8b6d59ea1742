import { cpSync, existsSync, readFileSync, writeFileSync, appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { XrayError } from '../src/errors.js';
import { ensureDemoModel } from '../src/model/demo/demo-model.js';
import { buildResNet34 } from '../src/model/demo/resnet.js';
import { packBundle, PACK_DEFAULTS } from '../src/model/pack.js';
import { ScoringSession } from '../src/cli/scoring.js';
import { OnnxModel } from '../src/infer/onnx-model.js';
import { encodeTiff16 } from '../src/tools/tiff-writer.js';
import { synthElectrode } from '../src/tools/synth.js';
import { cli, tempDir } from './helpers.js';

async function expectCode(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err, `expected ${code}`).toBeInstanceOf(XrayError);
  expect((err as XrayError).code).toBe(code);
  if (message) expect((err as XrayError).message).toMatch(message);
}

describe('model bundles', () => {
  let root: string;
  let tiny: string;
  beforeAll(async () => {
    root = tempDir('xray-qc-bundle-');
    tiny = await ensureDemoModel(join(root, 'tiny'), 'tiny');
  });

  const copy = (name: string): string => {
    const dir = join(root, name);
    cpSync(tiny, dir, { recursive: true });
    return dir;
  };
  const editManifest = (dir: string, edit: (m: Record<string, any>) => void): void => {
    const path = join(dir, 'manifest.json');
    const m = JSON.parse(readFileSync(path, 'utf8')) as Record<string, any>;
    edit(m);
    writeFileSync(path, JSON.stringify(m));
  };

  it('the tiny demo model loads, is marked untrained and scores a capture', async () => {
    const scorer = await ScoringSession.open(tiny);
    try {
      expect(scorer.model.ref.untrained).toBe(true);
      const file = join(root, 'c.tif');
      const img = synthElectrode(1, null, { width: 300, height: 560 });
      writeFileSync(file, encodeTiff16(img.width, img.height, img.data, { compression: 'lzw' }));
      const r = await scorer.score(file);
      expect(r.verdict).not.toBe('error');
      if (r.verdict !== 'error') {
        expect(r.p_abnormal).toBeGreaterThan(0);
        expect(r.p_abnormal).toBeLessThan(1);
        expect(r.model.sha256).toMatch(/^[0-9a-f]{64}$/);
      }
    } finally {
      await scorer.close();
    }
  });

  it('manifest schema errors name the field', async () => {
    const dir = copy('bad-schema');
    editManifest(dir, (m) => { m.preprocess.conversion = 'clahe'; m.decision.threshold = 2; m.extra = 1; });
    await expectCode(OnnxModel.open(dir), 'MODEL_MANIFEST_INVALID', /preprocess\.conversion: .*decision\.threshold: |decision\.threshold: .*preprocess\.conversion: /);
    const noBounds = copy('no-bounds');
    editManifest(noBounds, (m) => { m.preprocess.bounds = null; });
    await expectCode(OnnxModel.open(noBounds), 'MODEL_MANIFEST_INVALID', /preprocess\.bounds: bounds are required/);
    const notJson = copy('not-json');
    writeFileSync(join(notJson, 'manifest.json'), '{ nope');
    await expectCode(OnnxModel.open(notJson), 'MODEL_MANIFEST_INVALID', /not JSON/);
  });

  it('a changed or missing model file is refused by size and sha256', async () => {
    const grown = copy('grown');
    appendFileSync(join(grown, 'model.onnx'), Buffer.from([0]));
    await expectCode(OnnxModel.open(grown), 'MODEL_FILE_MISMATCH', /files\.model\.onnx: \d+ bytes/);
    const flipped = copy('flipped');
    const bytes = readFileSync(join(flipped, 'model.onnx'));
    bytes[bytes.length - 10] ^= 0xff;
    writeFileSync(join(flipped, 'model.onnx'), bytes);
    await expectCode(OnnxModel.open(flipped), 'MODEL_FILE_MISMATCH', /sha256/);
  });

  it('graph input/output names and shapes are checked against the manifest', async () => {
    const wrongInput = copy('wrong-input');
    editManifest(wrongInput, (m) => { m.input.name = 'pixels'; });
    await expectCode(OnnxModel.open(wrongInput), 'MODEL_GRAPH_MISMATCH', /input\.name: graph has no input 'pixels'/);
    const wrongShape = copy('wrong-shape');
    editManifest(wrongShape, (m) => { m.input.height = 2000; });
    await expectCode(OnnxModel.open(wrongShape), 'MODEL_GRAPH_MISMATCH', /input\.height: .* 128, manifest expects 2000/);
    const wrongOutput = copy('wrong-output');
    editManifest(wrongOutput, (m) => { m.output.name = 'scores'; });
    await expectCode(OnnxModel.open(wrongOutput), 'MODEL_GRAPH_MISMATCH', /output\.name/);
    const wrongIndex = copy('wrong-index');
    editManifest(wrongIndex, (m) => { m.output.abnormal_index = 2; });
    await expectCode(OnnxModel.open(wrongIndex), 'MODEL_GRAPH_MISMATCH', /output\.abnormal_index/);
  });

  it('a model ONNX Runtime cannot load is MODEL_LOAD_FAILED, not a crash', async () => {
    const dir = join(root, 'garbage');
    mkdirSync(dir);
    writeFileSync(join(dir, 'g.onnx'), 'this is not a protobuf');
    await packBundle({ ...PACK_DEFAULTS, onnx: join(dir, 'g.onnx'), out: dir, name: 'garbage', version: 1, bounds: { min: 1, max: 2 }, reviewBand: null });
    await expectCode(OnnxModel.open(dir), 'MODEL_LOAD_FAILED', /provider cpu could not load/);
  });

  it('unavailable providers fall back to the next with a warning naming them', async () => {
    const scorer = await OnnxModel.open(tiny, { providers: ['tensorrt', 'cuda', 'cpu'] });
    try {
      expect(scorer.load.provider).toBe('cpu');
      expect(scorer.load.warnings.join('\n')).toMatch(/provider tensorrt/);
      expect(scorer.load.warnings.join('\n')).toMatch(/provider cuda/);
    } finally {
      await scorer.close();
    }
  });

  it('repositories: `active` names the bundle; one bundle alone is used; two without `active` is an error', async () => {
    const repo = join(root, 'repo');
    cpSync(tiny, join(repo, 'tiny-v1'), { recursive: true });
    let s = await OnnxModel.open(repo);
    expect(s.bundle.dir).toBe(join(repo, 'tiny-v1'));
    await s.close();
    const onnx = join(root, 'logits.onnx');
    writeFileSync(onnx, buildResNet34({ height: 128, width: 64, baseChannels: 4, seed: 2, outputKind: 'logits', outputName: 'logits' }));
    await packBundle({ ...PACK_DEFAULTS, onnx, out: join(repo, 'tiny-v2'), name: 'electrode-resnet34-tiny', version: 2, bounds: { min: 1700, max: 2800 }, reviewBand: null, height: 128, width: 64, outputKind: 'logits', outputName: 'logits' });
    await expectCode(OnnxModel.open(repo), 'MODEL_NOT_FOUND', /2 bundles and no 'active'/);
    writeFileSync(join(repo, 'active'), 'tiny-v2\n');
    s = await OnnxModel.open(repo);
    expect(s.bundle.manifest.version).toBe(2);
    await s.close();
    writeFileSync(join(repo, 'active'), '../elsewhere\n');
    await expectCode(OnnxModel.open(repo), 'MODEL_NOT_FOUND', /must name a bundle directory/);
  });

  it('the CLI reports a missing model with its code and exit status 2, and no per-file line', () => {
    const r = cli(['score', '--model', join(root, 'nope'), join(root, 'c.tif')]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/MODEL_NOT_FOUND: .*does not exist/);
  });

  it('pack refuses global conversion without bounds, and bad option values', () => {
    const r = cli(['model', 'pack', '--onnx', join(tiny, 'model.onnx'), '--out', join(root, 'p1'), '--name', 'x', '--version', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/PACK_INVALID_ARGUMENT: --bounds is required/);
    const r2 = cli(['model', 'pack', '--onnx', join(tiny, 'model.onnx'), '--out', join(root, 'p2'), '--name', 'x', '--version', '0']);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/--version/);
  });

  it('pack refuses a --metrics that is not a JSON object, and a --file that is missing or clashes', () => {
    const base = ['model', 'pack', '--onnx', join(tiny, 'model.onnx'), '--name', 'x', '--version', '1', '--conversion', 'naive', '--no-verify'];
    writeFileSync(join(root, 'bad.json'), '{"a": ');
    writeFileSync(join(root, 'list.json'), '[1, 2]');
    writeFileSync(join(root, 'model.onnx'), 'not the model');
    const cases: Array<[string[], RegExp]> = [
      [['--metrics', join(root, 'bad.json')], /^xray-qc: PACK_INVALID_ARGUMENT: --metrics .*bad\.json: .*JSON/],
      [['--metrics', join(root, 'list.json')], /^xray-qc: PACK_INVALID_ARGUMENT: --metrics .*list\.json: not a JSON object$/m],
      [['--file', join(root, 'nowhere.csv')], /^xray-qc: PACK_INVALID_ARGUMENT: --file .*nowhere\.csv: no such file$/m],
      [['--file', join(root, 'model.onnx')], /^xray-qc: PACK_INVALID_ARGUMENT: .*model\.onnx: a bundle already has a file named model\.onnx$/m],
    ];
    for (const [i, [extra, message]] of cases.entries()) {
      const out = join(root, `bad-${i}`);
      const r = cli([...base, '--out', out, ...extra]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(existsSync(join(out, 'manifest.json'))).toBe(false); // never a bundle that looks whole
    }
  });
});

describe('the preparation worker', () => {
  it('is restarted when it dies: the capture in it gets an error, the next one is scored', async () => {
    const root = tempDir();
    const model = await ensureDemoModel(join(root, 'tiny'), 'tiny');
    const scorer = await ScoringSession.open(model);
    try {
      const file = join(root, 'c.tif');
      const img = synthElectrode(3, null, { width: 200, height: 300 });
      writeFileSync(file, encodeTiff16(img.width, img.height, img.data));
      const stage = (scorer as unknown as { stage: { restarts: number; thread: { worker: import('node:worker_threads').Worker } } }).stage;
      const pending = scorer.score(file);
      await stage.thread.worker.terminate(); // what a crash in a native decoder would look like
      const r = await pending;
      expect([r.verdict, r.reason]).toEqual(['error', 'PREPARE_WORKER_EXITED']);
      await new Promise((res) => setTimeout(res, 300));
      expect(stage.restarts).toBe(1);
      expect((await scorer.score(file)).verdict).not.toBe('error');
    } finally {
      await scorer.close();
    }
  });
});
