import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, jsonLines, makeKit, python, readNpy, ROOT, tempDir, type KitEntry } from './helpers.js';

/**
 * The scoring contract against the training side: ONNX models exported by PyTorch
 * (torch.onnx.export, a softmax `probs` and a `logits` variant) packed with `xray-qc model pack`,
 * TIFFs written by tifffile, OpenCV, ImageMagick, libtiff (tiffcp) and GDAL in every encoding, all four conversions.
 * Reference: test/tools/torch_reference.py (NumPy/OpenCV preprocessing + the PyTorch model).
 */

const REF = join(ROOT, 'test/tools/torch_reference.py');
const CONVERSIONS = ['naive', 'global', 'local', 'mixed'] as const;
const KINDS = [{ kind: 'softmax', seed: 0, output: 'probs' }, { kind: 'logits', seed: 3, output: 'logits' }] as const;
const [H, W] = [256, 128];

interface ScoreLine { file: string; verdict: string; p_abnormal: number; error?: { code: string } }

describe('parity with a PyTorch + OpenCV implementation', () => {
  let dir: string;
  let kit: KitEntry[];
  const reference: Record<string, Record<string, number>> = {};
  const refTensors: Record<string, string> = {};

  beforeAll(() => {
    dir = tempDir('xray-qc-parity-');
    kit = makeKit(join(dir, 'kit'));
    for (const k of KINDS) {
      const onnx = join(dir, `${k.kind}.onnx`);
      python(REF, ['export', '--out', onnx, '--kind', k.kind, '--seed', String(k.seed), '--height', String(H), '--width', String(W)]);
      for (const invert of [false, true]) {
        const tensorDir = tempDir();
        const out = python(REF, ['reference', '--kind', k.kind, '--seed', String(k.seed), '--source', join(dir, 'kit/source.npy'),
          '--height', String(H), '--width', String(W), '--tensor-dir', tensorDir, ...(invert ? ['--invert'] : [])]);
        reference[`${k.kind}/${invert}`] = JSON.parse(out) as Record<string, number>;
        refTensors[String(invert)] = tensorDir;
      }
      for (const conversion of CONVERSIONS) {
        const r = cli(['model', 'pack', '--onnx', onnx, '--out', join(dir, `${k.kind}-${conversion}`), '--name', `parity-${k.kind}`,
          '--version', '1', '--conversion', conversion, '--bounds', '1700,2800', '--output-name', k.output, '--output-kind', k.kind,
          '--height', String(H), '--width', String(W)]);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
      }
    }
  });

  it.each(KINDS.flatMap((k) => CONVERSIONS.map((c) => [k.kind, c] as const)))('%s model, %s conversion: every file within 2e-3', (kind, conversion) => {
    const r = cli(['score', '--json', '--model', join(dir, `${kind}-${conversion}`), ...kit.map((e) => join(dir, 'kit', e.file))]);
    expect(r.code).toBe(0);
    const lines = jsonLines<ScoreLine>(r.stdout);
    expect(lines.map((l) => l.file)).toEqual(kit.map((e) => join(dir, 'kit', e.file)));
    const worst = { diff: 0, file: '' };
    for (const [i, line] of lines.entries()) {
      expect(line.verdict, JSON.stringify(line)).not.toBe('error');
      const want = reference[`${kind}/${kit[i].invert}`][conversion];
      const diff = Math.abs(line.p_abnormal - want);
      if (diff > worst.diff) Object.assign(worst, { diff, file: kit[i].file });
    }
    console.log(`parity ${kind}/${conversion}: worst |Δp| = ${worst.diff.toExponential(2)} (${worst.file || 'all equal'}) over ${lines.length} files`);
    expect(worst.diff, `worst ${worst.file}`).toBeLessThanOrEqual(2e-3);
  });

  it.each(CONVERSIONS)('preprocess tensors (%s) are within one 8-bit level of the reference at every element', (conversion) => {
    const STD = [0.229, 0.224, 0.225];
    for (const entry of kit.filter((e) => ['cv_lzw.tif', 'im_zip_pred_msb.tif', 'tf_tiled_be.tif', 'tf_miniswhite.tif', 'lt_be_rows1.tif', 'lt_bigtiff_zstd_tiled_be.tif', 'gd_zstd_pred_be.tif'].includes(e.file))) {
      const out = join(tempDir(), 't.npy');
      const r = cli(['preprocess', '--model', join(dir, `softmax-${conversion}`), '--out', out, join(dir, 'kit', entry.file)]);
      expect(r.code, r.stderr).toBe(0);
      const ours = readNpy(out);
      const ref = readNpy(join(refTensors[String(entry.invert)], `${conversion}.npy`));
      expect(ours.shape).toEqual([1, 3, H, W]);
      expect(ref.shape).toEqual(ours.shape);
      let maxLevels = 0;
      const plane = H * W;
      for (let i = 0; i < ours.data.length; i++) {
        const levels = (Math.abs(ours.data[i] - ref.data[i]) * STD[Math.floor(i / plane)] * 255);
        maxLevels = Math.max(maxLevels, levels);
      }
      console.log(`preprocess ${conversion} ${entry.file}: max |Δ| = ${maxLevels.toFixed(6)} levels`);
      expect(maxLevels, entry.file).toBeLessThanOrEqual(1);
    }
  });
});
