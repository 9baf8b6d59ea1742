import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { endianness } from 'node:os';
import { PNG } from 'pngjs';
import type { Conversion } from '../convert/conversion.js';
import { readCaptureFile } from '../decode/capture-file.js';
import { decodeTiff, type Gray16Image } from '../decode/tiff.js';
import { Preprocessor } from '../prepare/preprocessor.js';
import type { CaptureRow, HeatRow } from './data.js';
import { boxDownscale, displayWindow, windowed, type DisplayWindow } from './window.js';

/**
 * The images of the review page, from the audited capture (a file that is gone, or no longer the
 * one scored — sha256 — is a placeholder with the reason):
 * - `model`: the model's 8-bit input, exactly — the station's decode + convert + resize path with
 *   the conversion and bounds on record, at the model's input size: the pixels of
 *   `xray-qc preprocess --png`'s file (grayscale where the three planes are one, else RGB);
 * - `display`: the capture's 16-bit values averaged down to the model's input aspect (height at
 *   most DISPLAY_HEIGHT), little-endian, with its auto window (window.ts); the page's script draws
 *   it through the window the reviewer sets, so that window never reaches the model's path;
 * - `thumb`: the same through the auto window, 8-bit, for the queue.
 * Recent renders are kept (up to `cacheBytes`), and the last few decoded captures, each under the
 * file's size and mtime, which every request checks (a file removed or rewritten is not served).
 */

export type ViewKind = 'model' | 'display' | 'thumb';
export interface DisplayInfo extends DisplayWindow { width: number; height: number }
export type Rendered = { ok: true; body: Buffer; type: string; display?: DisplayInfo } | { ok: false; why: string };

const DISPLAY_HEIGHT = 1000;
const THUMB_HEIGHT = 200;
type Decoded = { ok: true; image: Gray16Image } | { ok: false; why: string };

export class Renderer {
  private readonly cache = new Map<string, Rendered>();
  private cachedBytes = 0;
  private readonly decoded = new Map<string, Promise<Decoded>>();

  constructor(private readonly inputSize: (row: CaptureRow) => Promise<{ height: number; width: number }>, private readonly cacheBytes = 64 * 1024 * 1024, private readonly decodedCount = 3) {}

  async view(row: CaptureRow, kind: ViewKind): Promise<Rendered> {
    if (!row.conversion) return { ok: false, why: 'no conversion on record (an error verdict before preparation)' };
    let file: string;
    try {
      const s = await stat(row.file_path);
      file = `${row.id}/${s.size}/${s.mtimeMs}`;
    } catch (err) {
      return { ok: false, why: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'the capture file is gone' : `the capture file cannot be read: ${(err as Error).message}` };
    }
    const key = `${file}/${kind}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const r = await this.render(row, kind, file);
    this.cache.set(key, r);
    this.cachedBytes += r.ok ? r.body.length : 0;
    while (this.cachedBytes > this.cacheBytes && this.cache.size > 1) {
      const [oldest, old] = this.cache.entries().next().value as [string, Rendered];
      this.cache.delete(oldest);
      this.cachedBytes -= old.ok ? old.body.length : 0;
    }
    return r;
  }

  private async render(row: CaptureRow, kind: ViewKind, file: string): Promise<Rendered> {
    const d = await this.decode(row, file);
    if (!d.ok) return d;
    try {
      const input = await this.inputSize(row);
      if (kind === 'model') {
        const bounds = row.bounds_min !== null && row.bounds_max !== null ? { min: row.bounds_min, max: row.bounds_max } : null;
        const pre = new Preprocessor({ ...input, conversion: row.conversion as Conversion, bounds, mean: [0, 0, 0], std: [1, 1, 1] }, null).run(d.image, undefined, true);
        if (!pre.planes) return { ok: false, why: 'no 8-bit planes' };
        return { ok: true, body: planesPng(pre.planes, input.width, input.height), type: 'image/png' };
      }
      const w = displayWindow(d.image);
      const height = Math.min(kind === 'display' ? DISPLAY_HEIGHT : THUMB_HEIGHT, d.image.height);
      const width = Math.max(1, Math.round((height * input.width) / input.height));
      const values = boxDownscale(d.image, width, height);
      if (kind === 'thumb') {
        const plane = windowed(values, w.low, w.high);
        return { ok: true, body: planesPng([plane, plane, plane], width, height), type: 'image/png' };
      }
      const body = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
      if (endianness() === 'BE') body.swap16();
      return { ok: true, body, type: 'application/octet-stream', display: { ...w, width, height } };
    } catch (err) {
      return { ok: false, why: `the capture cannot be rendered: ${(err as Error).message}` };
    }
  }

  /** The capture, read once, checked against the sha256 on record and decoded; the last few are kept. */
  private decode(row: CaptureRow, file: string): Promise<Decoded> {
    let p = this.decoded.get(file);
    if (!p) {
      p = decodeChecked(row);
      this.decoded.set(file, p);
      while (this.decoded.size > this.decodedCount) this.decoded.delete(this.decoded.keys().next().value as string);
    }
    return p;
  }
}

async function decodeChecked(row: CaptureRow): Promise<Decoded> {
  let bytes: Buffer;
  try {
    bytes = (await readCaptureFile(row.file_path)).bytes;
  } catch (err) {
    return { ok: false, why: `the capture file cannot be read: ${(err as Error).message}` };
  }
  if (row.file_sha256 && createHash('sha256').update(bytes).digest('hex') !== row.file_sha256) return { ok: false, why: 'the capture file changed since it was scored (sha256 differs)' };
  try {
    return { ok: true, image: await decodeTiff(bytes) };
  } catch (err) {
    return { ok: false, why: `the capture cannot be decoded: ${(err as Error).message}` };
  }
}

/** 8-bit planes as a PNG, without loss: grayscale when the three are one plane (replicated), RGB otherwise. */
export function planesPng(planes: [Uint8Array, Uint8Array, Uint8Array], width: number, height: number): Buffer {
  const gray = planes[0] === planes[1] && planes[1] === planes[2];
  const png = new PNG({ width, height, colorType: gray ? 0 : 2, inputColorType: gray ? 0 : 2, inputHasAlpha: false });
  const data = Buffer.alloc(width * height * (gray ? 1 : 3));
  if (gray) data.set(planes[0]);
  else for (let i = 0; i < width * height; i++) for (let c = 0; c < 3; c++) data[3 * i + c] = planes[c][i];
  png.data = data;
  return PNG.sync.write(png, { colorType: gray ? 0 : 2, inputColorType: gray ? 0 : 2, inputHasAlpha: false });
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
