import { chmodSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, jsonLines, PYTHON, tempDir } from './helpers.js';

/**
 * The training host through the station's CLI: `xray-qc train` on synthetic bundles gives a bundle
 * that `xray-qc score` serves with the training side's own scores (train/serve parity), whose
 * threshold and review band are the requested operating point recomputed here from the stored
 * out-of-fold scores, and that golden / sign / registry publish take unchanged. The Python side's
 * own tests (data checks, Table 1, bad data) are training/tests, run by `npm test` too.
 */

const env = { XRAY_QC_PYTHON: PYTHON };
const csvRows = (text: string): Array<Record<string, string>> => {
  const [head, ...lines] = text.trim().split('\n');
  const cols = head.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])));
};

describe('xray-qc train', () => {
  let dir: string;
  let bundle: string;
  let trained: { threshold: number; review_band: [number, number] | null };
  const MISS = 0.1;
  const BAND = 0.2;

  beforeAll(() => {
    dir = tempDir('xray-qc-train-');
    const s = cli(['synth', '--out', join(dir, 'data'), '--count', '30', '--bundle-size', '6', '--abnormal-rate', '0.4',
      '--width', '200', '--height', '400', '--seed', '5']);
    expect(s.code, s.stderr).toBe(0);
    bundle = join(dir, 'bundle');
    const r = cli(['train', '--data', join(dir, 'data'), '--out', bundle, '--name', 'synthetic-resnet34', '--version', '1',
      '--conversion', 'global', '--operating-point', `miss-rate:${MISS}`, '--review-band', `auto:${BAND}`,
      '--input-size', '64x32', '--epochs', '10', '--backbone', 'random', '--seed', '2', '--synthetic'], { env, timeoutMs: 600_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/fold 5\/5 \(global\)/); // the operating point needs out-of-fold scores
    trained = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as typeof trained;
  }, 600_000);

  it('writes a bundle with its model card, listed in the manifest', () => {
    const manifest = JSON.parse(readFileSync(join(bundle, 'manifest.json'), 'utf8'));
    expect(Object.keys(manifest.files).sort()).toEqual(['model-card.json', 'model-card.md', 'model.onnx', 'oof-predictions.csv', 'train-predictions.csv']);
    expect(readdirSync(bundle).sort()).toEqual(['manifest.json', ...Object.keys(manifest.files)].sort());
    const card = JSON.parse(readFileSync(join(bundle, 'model-card.json'), 'utf8'));
    expect(card.trained_on_synthetic).toBe(true);
    expect(card.backbone.untrained_backbone).toBe(true);
    expect(card.data.captures).toBe(30);
    expect(Object.keys(card.data.bundles)).toEqual(['B01', 'B02', 'B03', 'B04', 'B05']);
    expect(card.preprocess.bounds).toEqual(manifest.preprocess.bounds);
    expect(card.operating_point.histograms.normal.counts.reduce((a: number, b: number) => a + b, 0)).toBeGreaterThan(0);
    expect(manifest.preprocess.conversion).toBe('global');
    expect(manifest.metrics.trained_on_synthetic).toBe(true);
  });

  it('the station scores every training file as the training side did (|Δp| ≤ 2e-3)', () => {
    const want = csvRows(readFileSync(join(bundle, 'train-predictions.csv'), 'utf8'));
    expect(want).toHaveLength(30);
    const r = cli(['score', '--json', '--model', bundle, ...want.map((w) => join(dir, 'data', w.file))]);
    expect(r.code, r.stderr).toBe(0);
    const got = jsonLines<{ p_abnormal: number }>(r.stdout);
    const worst = Math.max(...got.map((g, i) => Math.abs(g.p_abnormal - Number(want[i].p_abnormal))));
    console.log(`train/serve parity: worst |Δp| = ${worst.toExponential(2)} over ${got.length} files`);
    expect(worst).toBeLessThanOrEqual(2e-3);
  });

  it('threshold and review band are the requested operating point, recomputed from the stored out-of-fold scores', () => {
    const oof = csvRows(readFileSync(join(bundle, 'oof-predictions.csv'), 'utf8')).filter((r) => r.method === 'global');
    expect(oof).toHaveLength(30);
    const p = oof.map((r) => Number(r.p_abnormal));
    const abnormal = oof.filter((r) => r.label === 'abnormal').map((r) => Number(r.p_abnormal)).sort((a, b) => a - b);
    // miss-rate:R — the highest t whose miss rate (abnormal with p < t) is ≤ R
    const t = abnormal[Math.floor(MISS * abnormal.length)];
    const manifest = JSON.parse(readFileSync(join(bundle, 'manifest.json'), 'utf8'));
    expect(manifest.decision.threshold).toBe(t);
    expect(abnormal.filter((v) => v < t).length / abnormal.length).toBeLessThanOrEqual(MISS);
    // auto:F — the band around t holds at most ⌊F·N⌋ scores, and no wider band (to the next score) would
    const band = manifest.decision.review_band as [number, number] | null;
    expect(band).toEqual(trained.review_band);
    const allowed = Math.floor(BAND * p.length);
    const inside = (lo: number, hi: number): number => p.filter((v) => v >= lo && v < hi).length;
    if (band) {
      expect(inside(band[0], band[1])).toBeLessThanOrEqual(allowed);
      const d = (band[1] - band[0]) / 2;
      const next = Math.min(...p.map((v) => Math.abs(v - t)).filter((x) => x > d + 1e-12));
      if (Number.isFinite(next) && t - next >= 0 && t + next <= 1) expect(inside(t - next, t + next)).toBeGreaterThan(allowed);
    }
  });

  it('golden, sign and registry publish take the bundle unchanged', () => {
    const files = csvRows(readFileSync(join(bundle, 'train-predictions.csv'), 'utf8')).slice(0, 2).map((w) => join(dir, 'data', w.file));
    expect(cli(['model', 'golden', bundle, ...files]).code).toBe(0);
    expect(cli(['model', 'keygen', '--out', join(dir, 'keys')]).code).toBe(0);
    expect(cli(['model', 'sign', '--key', join(dir, 'keys', 'private.pem'), bundle]).code).toBe(0);
    const pub = cli(['registry', 'publish', '--registry', join(dir, 'registry'), bundle]);
    expect(pub.code, pub.stderr).toBe(0);
    expect(readdirSync(join(dir, 'registry', 'synthetic-resnet34', '1'))).toContain('model-card.md');
  });
});

describe('xray-qc train|evaluate without PyTorch', () => {
  it('no interpreter, or one without torch: one line naming what to install, exit 2', () => {
    const out = join(tempDir(), 'r');
    const none = cli(['evaluate', '--data', '/nonexistent', '--out', out], { env: { XRAY_QC_PYTHON: '/nonexistent/python3' } });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^xray-qc evaluate: no Python interpreter "\/nonexistent\/python3" \(ENOENT\): install python3-torch python3-torchvision/);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
    const bare = join(tempDir(), 'python-without-site');
    writeFileSync(bare, `#!/bin/sh\nexec ${PYTHON} -S "$@"\n`); // no site-packages: no numpy, no torch
    chmodSync(bare, 0o755);
    const lacking = cli(['train', '--data', '/nonexistent', '--out', out], { env: { XRAY_QC_PYTHON: bare } });
    expect(lacking.code).toBe(2);
    expect(lacking.stderr).toMatch(/^xray-qc train: .* lacks (torch|torchvision|cv2|tifffile|numpy): install python3-torch/);
    expect(lacking.stderr.trim().split('\n')).toHaveLength(1);
  });
});
