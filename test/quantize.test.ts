import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { beforeAll, describe, expect, it } from 'vitest';
import { ScoringSession } from '../src/cli/scoring.js';
import { loadBundle } from '../src/model/bundle.js';
import { buildResNet34 } from '../src/model/demo/resnet.js';
import { packBundle, PACK_DEFAULTS } from '../src/model/pack.js';
import { FLOAT_CONV_OPS, optimisedOps } from '../src/quantize/fusion.js';
import { addGolden, checkGolden } from '../src/sync/golden.js';
import { synthElectrode } from '../src/tools/synth.js';
import { encodeTiff16 } from '../src/tools/tiff-writer.js';
import { cli, PYTHON, tempDir } from './helpers.js';

const { onnx } = onnxProto;

/**
 * `xray-qc model quantize` on a small ResNet-34 whose scores are spread across [0, 1] (its last
 * layer scaled up, so that quantisation error shows in p_abnormal and the agreement check can
 * fail), calibrated and checked on synthetic captures through the station's preprocessing.
 */

const H = 256;
const W = 128;

/**
 * A small ResNet-34 (logits), written to `path`; `last` rescales its final layer so that the
 * logit difference d becomes k·d − c; `foreignOp` swaps one Relu for an op the quantiser does not know.
 */
function smallModel(path: string, last?: { k: number; c: number }, foreignOp?: string): void {
  const model = onnx.ModelProto.decode(buildResNet34({ height: H, width: W, baseChannels: 8, seed: 5, outputKind: 'logits', outputName: 'logits' }));
  const g = model.graph!;
  if (last) {
    const gemm = g.node!.filter((n) => n.opType === 'Gemm').at(-1)!;
    const [w, b] = gemm.input!.slice(1).map((name) => g.initializer!.find((i) => i.name === name)!);
    const floats = (t: onnxProto.onnx.ITensorProto): Float32Array => new Float32Array(new Uint8Array(t.rawData!).slice().buffer);
    const wv = floats(w).map((x) => x * last.k);
    const bv = floats(b).map((x) => x * last.k);
    bv[1] -= last.c; // d = l1 − l0 → k·d − c
    w.rawData = new Uint8Array(wv.buffer);
    b.rawData = new Uint8Array(bv.buffer);
  }
  if (foreignOp) g.node!.find((n) => n.opType === 'Relu')!.opType = foreignOp;
  writeFileSync(path, onnx.ModelProto.encode(model).finish());
}

/** Captures whose brightness differs (−600…+600 around the synthetic electrode), so that even a seeded backbone's features differ between them. */
function captures(dir: string, seed: number, count: number): string[] {
  mkdirSync(dir, { recursive: true });
  return Array.from({ length: count }, (_, i) => {
    const img = synthElectrode(seed * 1000 + i, i % 3 === 0 ? 'bubble' : null, { width: 300, height: 560 });
    const shift = Math.round(-600 + (1200 * ((i * 37) % count)) / count);
    const data = img.data.map((v) => Math.max(0, Math.min(65535, v + shift)));
    const file = join(dir, `c${String(i).padStart(3, '0')}.tif`);
    writeFileSync(file, encodeTiff16(img.width, img.height, data, { compression: 'deflate' }));
    return file;
  });
}

async function bundle(dir: string, onnxPath: string, version = 1): Promise<string> {
  await packBundle({
    ...PACK_DEFAULTS, onnx: onnxPath, out: dir, name: 'small-resnet34', version, conversion: 'global', bounds: { min: 1000, max: 3600 }, reviewBand: [0.45, 0.55],
    outputKind: 'logits', outputName: 'logits', height: H, width: W, description: 'test model',
  });
  return dir;
}

describe('model quantize', () => {
  let root: string;
  let fp32: string;
  let cal: string;
  let hold: string;
  beforeAll(async () => {
    root = tempDir('xray-qc-quantize-');
    cal = join(root, 'cal');
    hold = join(root, 'hold');
    const all = [...captures(cal, 1, 24), ...captures(hold, 2, 40)];
    // The seeded model's logit difference over these captures, then its last layer rescaled so
    // that it spans about ±4: p_abnormal from ~0.02 to ~0.98.
    smallModel(join(root, 'raw.onnx'));
    const raw = await bundle(join(root, 'raw'), join(root, 'raw.onnx'));
    const session = await ScoringSession.open(raw);
    const d: number[] = [];
    try {
      for (const f of all) {
        const r = await session.score(f);
        if (r.verdict === 'error') throw new Error(`${f}: ${r.error.code}`);
        d.push(Math.log(r.p_abnormal / (1 - r.p_abnormal)));
      }
    } finally {
      await session.close();
    }
    const [lo, hi] = [Math.min(...d), Math.max(...d)];
    const k = 8 / (hi - lo);
    smallModel(join(root, 'small.onnx'), { k, c: k * (lo + hi) / 2 });
    fp32 = await bundle(join(root, 'fp32'), join(root, 'small.onnx'));
    const golden = await ScoringSession.open(fp32);
    try {
      await addGolden(fp32, (f) => golden.score(f), [all[30], all[31]]);
    } finally {
      await golden.close();
    }
  });

  it('writes an int8 bundle that fuses to QLinearConv/QLinearAdd, agrees with fp32 on held-out captures and passes the onnx checker', async () => {
    const out = join(root, 'int8');
    const r = cli(['model', 'quantize', fp32, '--calibration', cal, '--holdout', hold, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    console.log(`QUANTIZE ${r.stdout.trim()}`); // the figures for docs/performance.md
    const report = JSON.parse(r.stdout) as { agreement: { scored: number; verdict_agreement: number; delta_p_abnormal: { max: number }; p_fp32_range: [number, number] }; fused: Record<string, number> };
    // the check can fail: the fp32 scores are spread across [0, 1]
    expect(report.agreement.p_fp32_range[0]).toBeLessThan(0.1);
    expect(report.agreement.p_fp32_range[1]).toBeGreaterThan(0.9);
    expect(report.agreement.scored).toBe(40);
    expect(report.agreement.verdict_agreement).toBeGreaterThanOrEqual(0.995);
    expect(report.agreement.delta_p_abnormal.max).toBeLessThanOrEqual(0.02);
    // the fused graph, as ONNX Runtime runs it (a pattern it stops fusing is caught here)
    const ops = await optimisedOps(join(out, 'model.onnx'));
    expect(ops.QLinearConv).toBe(36);
    expect(ops.QLinearAdd).toBe(16);
    for (const op of FLOAT_CONV_OPS) expect(ops[op] ?? 0, op).toBe(0);
    expect(report.fused).toEqual(ops);
    // a normal bundle: next version, verified files, the report in metrics and model card, golden re-scored by it
    const b = await loadBundle(out);
    expect(b.manifest.version).toBe(2);
    expect(b.manifest.metrics.quantization).toMatchObject({ method: 'minmax', quantised_convs: 36 });
    expect(Object.keys(b.manifest.files)).toEqual(expect.arrayContaining(['model.onnx', 'golden/expected.json']));
    const session = await ScoringSession.open(out);
    try {
      expect(await checkGolden(out, (f) => session.score(f))).toBeNull();
    } finally {
      await session.close();
    }
    // Debian's python3-onnx checker accepts the graph (a full check: with shape inference)
    const py = spawnSync(PYTHON, ['-c', 'import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True); print("ok")', join(out, 'model.onnx')], { encoding: 'utf8' });
    expect(py.stderr).toBe('');
    expect(py.stdout.trim()).toBe('ok');

    // quantising it again: refused, one line, exit 2
    const again = cli(['model', 'quantize', out, '--calibration', cal, '--out', join(root, 'int8-again')]);
    expect(again.code).toBe(2);
    expect(again.stderr.trim().split('\n')).toHaveLength(1);
    expect(again.stderr).toMatch(/QUANTIZE_INVALID_INPUT: .*quantised already/);
  });

  it('refuses an empty calibration folder and a graph with an operator it does not know, one line each, exit 2', async () => {
    const empty = join(root, 'empty');
    mkdirSync(empty);
    const r = cli(['model', 'quantize', fp32, '--calibration', empty, '--out', join(root, 'none')]);
    expect([r.code, r.stderr.trim().split('\n').length]).toEqual([2, 1]);
    expect(r.stderr).toMatch(/QUANTIZE_INVALID_INPUT: .*no captures/);
    smallModel(join(root, 'odd.onnx'), undefined, 'LeakyRelu');
    const odd = await bundle(join(root, 'odd'), join(root, 'odd.onnx'));
    const r2 = cli(['model', 'quantize', odd, '--calibration', cal, '--out', join(root, 'none')]);
    expect([r2.code, r2.stderr.trim().split('\n').length]).toEqual([2, 1]);
    expect(r2.stderr).toMatch(/QUANTIZE_INVALID_INPUT: .*does not know: LeakyRelu/);
    expect(existsSync(join(root, 'none'))).toBe(false);
  });

  it('refuses a model that disagrees with fp32 (calibrated on one flat capture) and writes nothing; --force writes it', async () => {
    const flat = join(root, 'flat');
    mkdirSync(flat);
    writeFileSync(join(flat, 'flat.tif'), encodeTiff16(300, 560, new Uint16Array(300 * 560).fill(1100)));
    const out = join(root, 'bad');
    const r = cli(['model', 'quantize', fp32, '--calibration', flat, '--holdout', hold, '--out', out]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/QUANTIZE_DISAGREES: the int8 model disagrees with fp32 on 40 held-out captures: verdict agreement .* nothing written/);
    expect(existsSync(out)).toBe(false);
    expect(readFileSync(join(fp32, 'manifest.json'), 'utf8')).toMatch(/"version": 1/);
    const forced = cli(['model', 'quantize', fp32, '--calibration', flat, '--holdout', hold, '--out', out, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(existsSync(join(out, 'manifest.json'))).toBe(true);
  });
});
