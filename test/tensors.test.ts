import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { abnormalProbability } from '../src/decide/verdict.js';
import { InferenceEngine } from '../src/infer/engine.js';
import { loadBundle } from '../src/model/bundle.js';
import { ensureDemoModel } from '../src/model/demo/demo-model.js';
import type { Model } from '../src/infer/model.js';
import { OnnxModel } from '../src/infer/onnx-model.js';
import { scorePrepared } from '../src/infer/score.js';
import type { PreparedCapture, PreparedOk } from '../src/pipeline/messages.js';
import { PrepareStage } from '../src/prepare/stage.js';
import { encodeTiff16 } from '../src/tools/tiff-writer.js';
import { synthElectrode } from '../src/tools/synth.js';
import { tempDir } from './helpers.js';

/**
 * Input tensors live in shared memory: the preparation worker writes them, the inference worker
 * reads them, the main thread only lends them out. A tensor is lent to one capture at a time.
 */
describe('input tensors in shared memory', () => {
  let root: string;
  let model: string;
  let stage: PrepareStage;
  let loaded: Model;
  const prepare = (file: string): Promise<PreparedCapture> => stage.prepare(file, loaded.contract);
  const complete = (p: PreparedCapture) => scorePrepared(loaded, p, stage, performance.now());
  const files: string[] = [];
  beforeAll(async () => {
    root = tempDir('xray-qc-tensors-');
    model = await ensureDemoModel(join(root, 'tiny'), 'tiny');
    loaded = await OnnxModel.open(model);
    stage = new PrepareStage();
    await stage.start();
    for (let i = 0; i < 3; i++) {
      const img = synthElectrode(40 + i, i === 1 ? 'bubble' : null, { width: 260, height: 470 });
      files.push(join(root, `c${i}.tif`));
      writeFileSync(files[i], encodeTiff16(img.width, img.height, img.data, { compression: 'deflate', predictor: true }));
    }
    files.push(join(root, 'bad.tif'));
    writeFileSync(files[3], Buffer.from('II*\0 definitely not a TIFF'));
  });
  afterAll(async () => {
    await loaded.close();
    await stage.stop();
  });

  const ok = (p: PreparedCapture): PreparedOk => {
    if (!p.ok) throw new Error(`${p.file}: ${p.error.code}`);
    return p;
  };

  it('captures prepared side by side get their own shared tensors; a scored one is lent again', async () => {
    const a = ok(await prepare(files[0]));
    const b = ok(await prepare(files[1]));
    expect(a.tensor.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(b.tensor).not.toBe(a.tensor);
    expect(a.tensor.some((v) => v !== 0)).toBe(true);
    const ra = await complete(a);
    expect(ra.verdict).not.toBe('error');
    // b is still held: preparing another capture reuses a's tensor and leaves b's as it was
    const bBefore = Float32Array.from(b.tensor);
    const c = ok(await prepare(files[2]));
    expect(c.tensor).toBe(a.tensor);
    expect(b.tensor).toEqual(bBefore);
    expect(c.tensor).not.toEqual(bBefore);
    const [rb, rc] = [await complete(b), await complete(c)];
    expect(rb.verdict).not.toBe('error');
    expect(rc.verdict).not.toBe('error');
  });

  it('the score is the same as from a private (transferred) copy of the tensor', async () => {
    const p = ok(await prepare(files[1]));
    const plain = Float32Array.from(p.tensor);
    const n = plain.length;
    const viaShared = await complete(p);
    const bundle = await loadBundle(model);
    const m = bundle.manifest;
    const engine = new InferenceEngine();
    await engine.start();
    try {
      await engine.load(bundle.modelPath, ['cpu'], { inputName: m.input.name, outputName: m.output.name, height: m.input.height, width: m.input.width, abnormalIndex: m.output.abnormal_index });
      const r = await engine.infer(plain);
      expect(plain.length).toBe(0); // transferred, not copied
      expect(r.input?.length).toBe(n); // and handed back
      expect(viaShared.verdict).not.toBe('error');
      if (viaShared.verdict !== 'error') expect(viaShared.p_abnormal).toBeCloseTo(abnormalProbability(r.output, m.output.kind, m.output.abnormal_index), 6);
      const shared = await engine.infer(new Float32Array(new SharedArrayBuffer(n * 4)).fill(0.25));
      expect(shared.input).toBeNull(); // a shared one never left
    } finally {
      await engine.stop();
    }
  });

  it('a failed preparation and a discarded capture give their tensor back; a discarded one cannot be scored', async () => {
    const a = ok(await prepare(files[0]));
    stage.release(a);
    const bad = await prepare(files[3]);
    expect(bad.ok).toBe(false);
    const b = ok(await prepare(files[2]));
    expect(b.tensor).toBe(a.tensor);
    const late = await complete(a);
    expect(late.verdict).toBe('error');
    if (late.verdict === 'error') expect(late.error.message).toMatch(/already scored or discarded/);
    expect((await complete(b)).verdict).not.toBe('error');
  });
});
