import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scoreFile } from '../infer/score.js';
import { OnnxModel } from '../infer/onnx-model.js';
import { defaultDemoDir, ensureDemoModel } from '../model/demo/demo-model.js';
import { PrepareStage } from '../prepare/stage.js';
import { ANOMALIES, synthElectrode, type Anomaly } from '../tools/synth.js';
import { encodeTiff16 } from '../tools/tiff-writer.js';

/**
 * `npm run bench:heatmap [-- N [BUNDLE]]`: does the hottest cell of a model's heat map lie on the
 * anomaly? N synthetic captures (default 28: each anomaly kind 4 times), each with one anomaly
 * whose pixels `synthElectrode` reports as a box; a hit is the hottest cell's centre within that
 * box widened by one cell. Chance: the share of cells that would be a hit, on average. Also how
 * often the hottest cell is on the map's outer ring, and how far it lies from the box (in cells,
 * the larger of the two axes; a hit is ≤ 1), and hits among the captures the model flagged. BUNDLE
 * defaults to the full demo model.
 */

async function main(): Promise<void> {
  const n = Number(process.argv[2]) || 28;
  const model = await OnnxModel.open(process.argv[3] ?? await ensureDemoModel(defaultDemoDir()));
  const stage = new PrepareStage();
  await stage.start();
  const dir = await mkdtemp(join(tmpdir(), 'xray-qc-bench-heatmap-'));
  const perKind = new Map<Anomaly, { n: number; hits: number }>();
  let hits = 0;
  let ring = 0;
  let chance = 0;
  let flagged = 0;
  let flaggedHits = 0;
  const distances: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const kind = ANOMALIES[i % ANOMALIES.length];
      const img = synthElectrode(31_000 + i, kind);
      const file = join(dir, `${i}.tif`);
      await writeFile(file, encodeTiff16(img.width, img.height, img.data, {}));
      const s = await scoreFile(file, model, stage);
      if (s.verdict === 'error' || !s.heatmap) throw new Error(`${file}: ${s.verdict === 'error' ? s.error.message : 'the model has no heat map (outputs.heatmap)'}`);
      const { width: gw, height: gh } = s.heatmap;
      const cw = img.width / gw;
      const ch = img.height / gh;
      const r = img.region!;
      const w = s.where;
      // cells from the hottest cell's centre to the box, the larger axis; a hit is within one cell
      const distance = w ? Math.max(Math.max(0, r.x0 - w.x, w.x - r.x1) / cw, Math.max(0, r.y0 - w.y, w.y - r.y1) / ch) : Infinity;
      const hit = distance <= 1;
      if (w) {
        distances.push(distance);
        const col = Math.floor(w.x / cw);
        const row = Math.floor(w.y / ch);
        if (col === 0 || row === 0 || col >= gw - 1 || row >= gh - 1) ring++;
      }
      const boxCells = Math.min(gw, (r.x1 - r.x0 + 1) / cw + 2) * Math.min(gh, (r.y1 - r.y0 + 1) / ch + 2);
      chance += boxCells / (gw * gh);
      hits += hit ? 1 : 0;
      flagged += s.verdict === 'flag' ? 1 : 0;
      flaggedHits += s.verdict === 'flag' && hit ? 1 : 0;
      const k = perKind.get(kind) ?? { n: 0, hits: 0 };
      perKind.set(kind, { n: k.n + 1, hits: k.hits + (hit ? 1 : 0) });
    }
  } finally {
    await model.close();
    await stage.stop();
    await rm(dir, { recursive: true, force: true });
  }
  const ref = model.ref;
  distances.sort((a, b) => a - b);
  const median = distances.length ? distances[Math.floor((distances.length - 1) / 2)].toFixed(1) : 'n/a';
  console.log(`| ${ref.name} v${ref.version}: ${n} synthetic captures, one anomaly each | hottest cell on the anomaly | chance | hottest cell on the outer ring | median distance to the anomaly (cells) | flagged | of those, hottest cell on the anomaly |\n|---|---|---|---|---|---|---|`);
  console.log(`| all | ${hits} of ${n} (${((100 * hits) / n).toFixed(0)} %) | ${((100 * chance) / n).toFixed(1)} % | ${ring} of ${n} | ${median} of ${distances.length} with a map | ${flagged} of ${n} | ${flaggedHits} of ${flagged} |`);
  for (const [kind, k] of perKind) console.log(`| ${kind} | ${k.hits} of ${k.n} | | | | | |`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
