import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { hottest, quantiseHeatMap } from '../src/decide/heatmap.js';
import { InferenceEngine } from '../src/infer/engine.js';
import type { GraphContract } from '../src/infer/messages.js';
import { DEMO_SEED, packageModelsDir, writeDemoBackbone } from '../src/model/demo/demo-model.js';
import { buildResNet34, gridOf, type LayerWeights } from '../src/model/demo/resnet.js';
import { encodeNpy } from '../src/tools/npy.js';
import { cli, python, readNpy, ROOT, tempDir } from './helpers.js';
import { encodeTiff16 } from '../src/tools/tiff-writer.js';
import { synthElectrode } from '../src/tools/synth.js';

/**
 * The heat map a model computes as forward operations (Grad-CAM through the head's Jacobian,
 * D43) against textbook Grad-CAM by PyTorch autograd on the same weights and input
 * (test/tools/gradcam_reference.py), run by the station's onnxruntime-node: the graph the
 * training kit exports, and the demo model's own graph.
 */

const REF = join(ROOT, 'test/tools/gradcam_reference.py');
const [H, W] = [256, 128];

/** max |a/max(a) − b/max(b)|: the measure (after normalisation). */
function normalisedDiff(a: Float32Array, b: Float32Array): number {
  const ma = Math.max(...a);
  const mb = Math.max(...b);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] / ma - b[i] / mb));
  return worst;
}

async function runGraph(modelPath: string, input: Float32Array): Promise<{ output: Float32Array; heat: { data: Float32Array; height: number; width: number } }> {
  const engine = new InferenceEngine();
  await engine.start();
  try {
    const graph: GraphContract = { inputName: 'input', outputName: 'probs', height: H, width: W, abnormalIndex: 1, heatmapName: 'heatmap' };
    await engine.load(modelPath, ['cpu'], graph);
    const r = await engine.infer(input);
    expect(r.heatmap).not.toBeNull();
    return { output: r.output, heat: r.heatmap! };
  } finally {
    await engine.stop();
  }
}

describe('heat maps: forward-operation Grad-CAM against PyTorch autograd', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('xray-qc-heatmap-');
  });

  it('the training kit exports probs and heatmap, equal to autograd Grad-CAM (≤ 1e-4 after normalisation)', async () => {
    const out = join(dir, 'export');
    const ref = JSON.parse(python(REF, ['export', out, '--height', String(H), '--width', String(W), '--seed', '4'])) as { probs: number[]; shape: number[] };
    const input = readNpy(join(out, 'input.npy')).data as Float32Array;
    const reference = readNpy(join(out, 'reference.npy'));
    const { output, heat } = await runGraph(join(out, 'model.onnx'), input);
    expect([heat.height, heat.width]).toEqual([gridOf(H, W).h, gridOf(H, W).w]);
    expect(reference.shape).toEqual([1, heat.height, heat.width]);
    expect(Math.max(...heat.data)).toBeGreaterThan(0); // not all-zero: the comparison means something
    const diff = normalisedDiff(heat.data, reference.data as Float32Array);
    console.log(`training-kit export: max |Δ| after normalisation ${diff.toExponential(2)} over ${heat.data.length} cells; probs Δ ${Math.abs(output[1] - ref.probs[1]).toExponential(2)}`);
    expect(diff).toBeLessThanOrEqual(1e-4);
    expect(Math.abs(output[1] - ref.probs[1])).toBeLessThan(1e-4);
  }, 120_000);

  it("the demo model's graph (built in TypeScript) equals autograd Grad-CAM on the demo's weights", async () => {
    const backbone = join(dir, 'backbone');
    await writeDemoBackbone(backbone);
    const trained = join(packageModelsDir(), 'demo-trained');
    const head: LayerWeights[] = [0, 1, 2, 3].map((k) => {
      const w = readNpy(join(trained, `fc_${k}.weight.npy`));
      return { weight: w.data as Float32Array, dims: w.shape, bias: readNpy(join(trained, `fc_${k}.bias.npy`)).data as Float32Array };
    });
    const model = join(dir, 'demo.onnx');
    writeFileSync(model, buildResNet34({ height: H, width: W, baseChannels: 64, seed: DEMO_SEED, head, heatmapName: 'heatmap' }));
    // an electrode-like input: a smooth ramp with a bright blob, ImageNet-normalised range
    const input = new Float32Array(3 * H * W);
    for (let c = 0; c < 3; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      input[c * H * W + y * W + x] = -1 + y / H + (Math.hypot(x - 90, y - 60) < 12 ? 2 : 0);
    }
    writeFileSync(join(dir, 'demo-input.npy'), encodeNpy(input, [1, 3, H, W]));
    const refOut = JSON.parse(python(REF, ['demo', '--backbone', backbone, '--head', trained, '--input', join(dir, 'demo-input.npy'), '--out', join(dir, 'demo-ref.npy')])) as { probs: number[] };
    const reference = readNpy(join(dir, 'demo-ref.npy'));
    const { output, heat } = await runGraph(model, input);
    expect(reference.shape).toEqual([1, heat.height, heat.width]);
    expect(Math.max(...heat.data)).toBeGreaterThan(0);
    const diff = normalisedDiff(heat.data, reference.data as Float32Array);
    console.log(`demo graph: max |Δ| after normalisation ${diff.toExponential(2)}; p_abnormal ${output[1].toFixed(6)} vs ${refOut.probs[1].toFixed(6)}`);
    expect(diff).toBeLessThanOrEqual(1e-4);
    expect(Math.abs(output[1] - refOut.probs[1])).toBeLessThan(1e-4);
  }, 120_000);

  it('the hottest cell maps to capture pixels; storage keeps 8 bits and the scale', () => {
    const data = new Float32Array(63 * 32);
    data[10 * 32 + 5] = 2.5;
    data[40 * 32 + 20] = 1;
    const map = { data, height: 63, width: 32 };
    expect(hottest(map, 1145, 2072)).toEqual({ x: Math.round((5.5 * 1145) / 32), y: Math.round((10.5 * 2072) / 63), strength: 2.5 });
    expect(hottest({ data: new Float32Array(8), height: 4, width: 2 }, 100, 200)).toBeNull();
    const q = quantiseHeatMap(map);
    expect(q.scale).toBe(2.5);
    expect(q.cells[10 * 32 + 5]).toBe(255);
    expect(q.cells[40 * 32 + 20]).toBe(102);
    expect(q.cells.byteLength).toBe(2016);
  });

  it('score --json writes the heat map as an array of its 8-bit cells, with where', () => {
    const d = tempDir('xray-qc-heatmap-json-');
    expect(cli(['model', 'demo', '--tiny', '--out', join(d, 'tiny')]).code).toBe(0);
    const img = synthElectrode(4, 'scratch', { width: 120, height: 220 });
    writeFileSync(join(d, 'c.tif'), encodeTiff16(img.width, img.height, img.data));
    const r = cli(['score', '--json', '--model', join(d, 'tiny'), join(d, 'c.tif')]);
    expect(r.code, r.stderr).toBe(0);
    const line = JSON.parse(r.stdout) as { heatmap: { width: number; height: number; scale: number; cells: unknown }; where: unknown };
    const { width, height, cells } = line.heatmap;
    expect(Array.isArray(cells)).toBe(true);
    expect((cells as number[]).length).toBe(width * height);
    expect((cells as number[]).every((c) => Number.isInteger(c) && c >= 0 && c <= 255)).toBe(true);
    expect(Math.max(...(cells as number[]))).toBe(line.where === null ? 0 : 255);
    expect(r.stdout.length).toBeLessThan(4 * width * height + 2000); // not an object keyed by index
  });
});
