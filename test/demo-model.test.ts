import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, jsonLines, ROOT, tempDir } from './helpers.js';

/**
 * The demo model is the station's own seeded ResNet-34 backbone with an fc 1000 + head trained by
 * `xray-qc train` on synthetic captures (scripts/train-demo.sh → models/demo-trained/). The
 * station builds the graph; the training side scored the same captures through torchvision with
 * those weights. Regenerating a few of the training captures (synth is deterministic) and scoring
 * them with the generated demo model must reproduce the training side's scores: the backbone
 * hand-over (batch-norm folded into the convolutions) and the head are the ones trained.
 */

const TRAINED = join(ROOT, 'models/demo-trained');

describe('the demo model, trained on synthetic captures', () => {
  const spec = JSON.parse(readFileSync(join(TRAINED, 'demo.json'), 'utf8'));
  let data: string;
  beforeAll(() => {
    data = tempDir('xray-qc-demo-model-');
    const s = spec.synth;
    const r = cli(['synth', '--out', data, '--count', String(s.count), '--bundle-size', String(s.bundle_size),
      '--abnormal-rate', String(s.abnormal_rate), '--seed', String(s.seed)], { timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
  }, 300_000);

  it('scores its training captures as the training side did (|Δp| ≤ 2e-3)', () => {
    const rows = readFileSync(join(TRAINED, 'train-predictions.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
    const labels = new Map(readFileSync(join(data, 'labels.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(',')).map((c) => [c[0], c[1]]));
    // two of each class, the first ones listed
    const pick = [...rows.filter((r) => labels.get(r[0]) === 'normal').slice(0, 2), ...rows.filter((r) => labels.get(r[0]) === 'abnormal').slice(0, 2)];
    const r = cli(['score', '--json', ...pick.map((p) => join(data, p[0]))], { timeoutMs: 600_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/trained on synthetic captures only/);
    const got = jsonLines<{ p_abnormal: number }>(r.stdout);
    const diffs = got.map((g, i) => Math.abs(g.p_abnormal - Number(pick[i][1])));
    console.log(`demo model vs training side: |Δp| ${diffs.map((d) => d.toExponential(1)).join(', ')}`);
    expect(Math.max(...diffs)).toBeLessThanOrEqual(2e-3);
    const manifest = JSON.parse(readFileSync(join(ROOT, 'models/demo/manifest.json'), 'utf8'));
    expect(manifest.synthetic).toBe(true);
    expect(manifest.untrained).toBeUndefined();
    expect(manifest.version).toBe(spec.version);
    expect(Object.keys(manifest.files)).toEqual(expect.arrayContaining(['model-card.json', 'model-card.md', 'train-predictions.csv']));
  });

  it('its card states the leave-one-bundle-out figure on held-out synthetic bundles', () => {
    const card = JSON.parse(readFileSync(join(TRAINED, 'model-card.json'), 'utf8'));
    expect(card.trained_on_synthetic).toBe(true);
    expect(card.backbone.kind).toBe('folded');
    const overall = card.lobo.table.Overall[card.preprocess.conversion];
    console.log(`demo model: LOBO BA overall (${card.preprocess.conversion}) ${overall} %`);
    expect(overall).toBe(spec.metrics.lobo_ba_overall[spec.conversion]);
  });
});
