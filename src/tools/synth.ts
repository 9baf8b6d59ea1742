import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gaussian, prng } from './random.js';
import { encodeTiff16, type WriteCompression } from './tiff-writer.js';

/**
 * Electrode-like 16-bit X-ray captures for the demo, tests and benchmarks: 1119–1219 px wide,
 * 2053–2115 px high (the paper's range), coating mostly 1700–2800 with texture, a bright uncoated
 * border, and anomalies of the paper's types. Deterministic for a seed.
 */

export const ANOMALIES = ['scratch', 'line', 'bubble', 'smudge', 'edge_cut', 'missing_ink', 'agglomerate'] as const;
export type Anomaly = (typeof ANOMALIES)[number];

export interface SynthImage {
  width: number;
  height: number;
  data: Uint16Array;
  anomaly: Anomaly | null;
  /** The pixels the anomaly changed, as a box (inclusive), null for a normal capture. */
  region: Box | null;
}

export interface Box { x0: number; y0: number; x1: number; y1: number }

export interface SynthSize {
  width?: number;
  height?: number;
}

export function synthElectrode(seed: number, anomaly: Anomaly | null, size: SynthSize = {}): SynthImage {
  const rand = prng(seed);
  const noise = gaussian(rand);
  const width = size.width ?? 1119 + Math.floor(rand() * 101);
  const height = size.height ?? 2053 + Math.floor(rand() * 63);
  const img = new Float32Array(width * height);
  const border = Math.max(2, Math.round(width * (0.02 + rand() * 0.015)));
  const base = 2150 + rand() * 200;
  const waves = Array.from({ length: 4 }, () => ({ fx: rand() * 0.02, fy: rand() * 0.01, phase: rand() * 6.28, amp: 40 + rand() * 80 }));
  const rowWave = new Float32Array(height);
  const colWave = new Float32Array(width);
  for (let y = 0; y < height; y++) rowWave[y] = waves[0].amp * Math.sin(y * waves[0].fy + waves[0].phase) + waves[1].amp * Math.sin(y * waves[1].fy + waves[1].phase);
  for (let x = 0; x < width; x++) colWave[x] = waves[2].amp * Math.sin(x * waves[2].fx + waves[2].phase) + waves[3].amp * Math.sin(x * waves[3].fx + waves[3].phase);
  for (let y = 0; y < height; y++) {
    const edge = y < border || y >= height - border;
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      img[i] = edge || x < border || x >= width - border
        ? 10500 + noise() * 250 // uncoated substrate: bright
        : base + rowWave[y] + colWave[x] + noise() * 45;
    }
  }
  const before = anomaly ? img.slice() : null;
  if (anomaly) drawAnomaly(img, width, height, border, anomaly, rand, noise);
  const region = before ? changed(before, img, width) : null;
  const data = new Uint16Array(width * height);
  for (let i = 0; i < data.length; i++) data[i] = Math.max(0, Math.min(65535, Math.round(img[i])));
  return { width, height, data, anomaly, region };
}

/** The box around every pixel that differs (null when none does). */
function changed(a: Float32Array, b: Float32Array, width: number): Box | null {
  let box: Box | null = null;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    const x = i % width;
    const y = (i - x) / width;
    if (!box) box = { x0: x, y0: y, x1: x, y1: y };
    else {
      if (x < box.x0) box.x0 = x;
      if (x > box.x1) box.x1 = x;
      if (y < box.y0) box.y0 = y;
      if (y > box.y1) box.y1 = y;
    }
  }
  return box;
}

function drawAnomaly(img: Float32Array, w: number, h: number, border: number, kind: Anomaly, rand: () => number, noise: () => number): void {
  const cx = border + 50 + rand() * (w - 2 * border - 100);
  const cy = border + 50 + rand() * (h - 2 * border - 100);
  const disc = (x0: number, y0: number, r: number, f: (d: number, i: number) => void): void => {
    for (let y = Math.max(0, Math.floor(y0 - r)); y < Math.min(h, Math.ceil(y0 + r)); y++) {
      for (let x = Math.max(0, Math.floor(x0 - r)); x < Math.min(w, Math.ceil(x0 + r)); x++) {
        const d = Math.hypot(x - x0, y - y0) / r;
        if (d <= 1) f(d, y * w + x);
      }
    }
  };
  switch (kind) {
    case 'scratch': { // thin bright line at an angle: coating scraped thin
      const angle = rand() * Math.PI;
      const len = 150 + rand() * 400;
      for (let t = -len / 2; t < len / 2; t += 0.5) {
        const x = Math.round(cx + t * Math.cos(angle));
        const y = Math.round(cy + t * Math.sin(angle));
        if (x > border && x < w - border && y > border && y < h - border) {
          img[y * w + x] += 900;
          img[y * w + x + 1] += 500;
        }
      }
      break;
    }
    case 'line': { // a streak along the coating direction
      const x0 = Math.round(cx);
      const delta = rand() < 0.5 ? -350 : 350;
      for (let y = border; y < h - border; y++) for (let x = x0; x < x0 + 3; x++) img[y * w + x] += delta;
      break;
    }
    case 'bubble': { // dark rim, bright centre
      disc(cx, cy, 15 + rand() * 30, (d, i) => { img[i] += d > 0.75 ? -450 : 600 * (1 - d); });
      break;
    }
    case 'smudge': { // soft dark blob: excess ink
      disc(cx, cy, 60 + rand() * 90, (d, i) => { img[i] -= 380 * (1 - d * d); });
      break;
    }
    case 'edge_cut': { // substrate notch into the coating at one side
      const depth = 25 + rand() * 50;
      const y0 = Math.round(cy);
      const left = rand() < 0.5;
      for (let y = y0; y < Math.min(h - border, y0 + 60 + rand() * 80); y++) {
        for (let k = 0; k < depth; k++) {
          const x = left ? border + k : w - border - 1 - k;
          img[y * w + x] = 10500 + noise() * 250;
        }
      }
      break;
    }
    case 'missing_ink': { // an uncoated patch
      const rw = 40 + rand() * 120;
      const rh = 30 + rand() * 150;
      for (let y = Math.round(cy); y < Math.min(h - border, cy + rh); y++) {
        for (let x = Math.round(cx); x < Math.min(w - border, cx + rw); x++) img[y * w + x] = 9800 + noise() * 250;
      }
      break;
    }
    case 'agglomerate': { // a cluster of small dark dots
      for (let k = 0; k < 12; k++) disc(cx + (rand() - 0.5) * 80, cy + (rand() - 0.5) * 80, 3 + rand() * 6, (d, i) => { img[i] -= 700 * (1 - d); });
      break;
    }
  }
}

export interface SynthSetOptions {
  out: string;
  count: number;
  seed?: number;
  /** Each capture is abnormal with this probability (independently: the count varies). */
  abnormalRate?: number;
  /** Exactly this many abnormal captures in each bundle (fewer in a short last bundle), at seeded positions; overrides abnormalRate. */
  abnormalPerBundle?: number;
  compression?: WriteCompression;
  size?: SynthSize;
  /** Captures per bundle (the paper's unit of leave-one-out evaluation). */
  bundleSize?: number;
  onFile?: (done: number, total: number) => void;
}

export interface SynthLabel { file: string; label: 'normal' | 'abnormal'; anomaly: Anomaly | ''; bundle: string }

export async function synthSet(o: SynthSetOptions): Promise<SynthLabel[]> {
  await mkdir(o.out, { recursive: true });
  const seed = o.seed ?? 1;
  const rand = prng(seed ^ 0x5eed);
  const labels: SynthLabel[] = [];
  const exact = o.abnormalPerBundle === undefined ? null : exactAbnormal(o.count, o.bundleSize ?? 10, o.abnormalPerBundle, seed);
  for (let i = 0; i < o.count; i++) {
    const drawn = rand() < (o.abnormalRate ?? 0.2); // drawn either way, so the images of a seed stay the same
    const abnormal = exact ? exact.has(i) : drawn;
    const anomaly = abnormal ? ANOMALIES[Math.floor(rand() * ANOMALIES.length)] : null;
    const img = synthElectrode(seed * 100003 + i, anomaly, o.size);
    const file = `electrode_${String(i + 1).padStart(4, '0')}.tif`;
    const compression = o.compression ?? 'none';
    await writeFile(join(o.out, file), encodeTiff16(img.width, img.height, img.data, { compression, predictor: compression !== 'none' }));
    labels.push({ file, label: abnormal ? 'abnormal' : 'normal', anomaly: anomaly ?? '', bundle: `B${String(Math.floor(i / (o.bundleSize ?? 10)) + 1).padStart(2, '0')}` });
    o.onFile?.(i + 1, o.count);
  }
  const csv = ['file,label,anomaly,bundle', ...labels.map((l) => `${l.file},${l.label},${l.anomaly},${l.bundle}`)].join('\n');
  await writeFile(join(o.out, 'labels.csv'), `${csv}\n`);
  return labels;
}

/** The capture indices that are abnormal: `perBundle` of each bundle's, chosen by a seeded shuffle. */
function exactAbnormal(count: number, bundleSize: number, perBundle: number, seed: number): Set<number> {
  const rand = prng(seed ^ 0xb0d1e);
  const out = new Set<number>();
  for (let start = 0; start < count; start += bundleSize) {
    const idx = Array.from({ length: Math.min(bundleSize, count - start) }, (_, k) => start + k);
    for (let k = idx.length - 1; k > 0; k--) {
      const j = Math.floor(rand() * (k + 1));
      [idx[k], idx[j]] = [idx[j], idx[k]];
    }
    for (const i of idx.slice(0, perBundle)) out.add(i);
  }
  return out;
}

