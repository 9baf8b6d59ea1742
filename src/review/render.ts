import { PNG } from 'pngjs';
import type { Conversion } from '../convert/conversion.js';
import { decodeTiffFile } from '../decode/capture-file.js';
import { sha256File } from '../model/bundle.js';
import { Preprocessor } from '../prepare/preprocessor.js';
import type { CaptureRow, HeatRow } from './data.js';

/**
 * The images of the review page, rendered from the audited capture by the station's own decode +
 * convert path (the 8-bit view `xray-qc preprocess --png` writes), then downscaled by whole-pixel
 * averaging; and the heat map as a colour overlay. A file that is gone, or no longer the one
 * scored (sha256), is a placeholder with the reason. Recent renders are kept (`cacheSize`).
 */

export type ViewKind = 'view' | 'thumb';
export type Rendered = { ok: true; png: Buffer } | { ok: false; why: string };

const SIZE: Record<ViewKind, number> = { view: 2, thumb: 10 }; // downscale factor of the model's input (2000×1000 → 1000×500, 200×100)

export class Renderer {
  private readonly cache = new Map<string, Rendered>();

  constructor(private readonly inputSize: (row: CaptureRow) => Promise<{ height: number; width: number }>, private readonly cacheSize = 48) {}

  async view(row: CaptureRow, kind: ViewKind): Promise<Rendered> {
    const key = `${row.id}/${kind}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const r = await this.render(row, kind);
    this.cache.set(key, r);
    while (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value as string);
    return r;
  }

  private async render(row: CaptureRow, kind: ViewKind): Promise<Rendered> {
    if (!row.conversion) return { ok: false, why: 'no conversion on record (an error verdict before preparation)' };
    let sha: string;
    try {
      sha = await sha256File(row.file_path);
    } catch (err) {
      return { ok: false, why: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'the capture file is gone' : `the capture file cannot be read: ${(err as Error).message}` };
    }
    if (row.file_sha256 && sha !== row.file_sha256) return { ok: false, why: 'the capture file changed since it was scored (sha256 differs)' };
    try {
      const { height, width } = await this.inputSize(row);
      const image = await decodeTiffFile(row.file_path);
      const bounds = row.bounds_min !== null && row.bounds_max !== null ? { min: row.bounds_min, max: row.bounds_max } : null;
      const pre = new Preprocessor({ height, width, conversion: row.conversion as Conversion, bounds, mean: [0, 0, 0], std: [1, 1, 1] }, null).run(image, undefined, true);
      if (!pre.planes) return { ok: false, why: 'no 8-bit planes' };
      return { ok: true, png: downscaledPng(pre.planes, width, height, SIZE[kind]) };
    } catch (err) {
      return { ok: false, why: `the capture cannot be decoded: ${(err as Error).message}` };
    }
  }
}

function downscaledPng(planes: [Uint8Array, Uint8Array, Uint8Array], width: number, height: number, f: number): Buffer {
  const w = Math.max(1, Math.floor(width / f));
  const h = Math.max(1, Math.floor(height / f));
  const png = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = 4 * (y * w + x);
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let dy = 0; dy < f; dy++) for (let dx = 0; dx < f; dx++) sum += planes[c][(y * f + dy) * width + x * f + dx];
        png.data[o + c] = Math.round(sum / (f * f));
      }
      png.data[o + 3] = 255;
    }
  }
  return PNG.sync.write(png);
}

/** The heat map at its own grid size, coloured (transparent → yellow → red) with alpha growing with heat; the browser scales it. */
export function heatPng(h: HeatRow): Buffer {
  const png = new PNG({ width: h.width, height: h.height });
  for (let i = 0; i < h.width * h.height; i++) {
    const t = h.cells[i] / 255;
    png.data[4 * i] = 255;
    png.data[4 * i + 1] = Math.round(255 * (1 - t) ** 0.7);
    png.data[4 * i + 2] = 0;
    png.data[4 * i + 3] = Math.round(210 * Math.min(1, t * 1.2));
  }
  return PNG.sync.write(png);
}
