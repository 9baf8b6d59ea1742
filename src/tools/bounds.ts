import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeTiffFile } from '../decode/capture-file.js';
import { toXrayError, type ErrorCode } from '../errors.js';
import { histogram16, percentilesFromHistogram } from '../convert/percentile.js';

/**
 * Global conversion bounds for a training set (paper §2.3.2): exact percentiles over all pixels of
 * all TIFFs under the given paths, through one 65,536-bin histogram — memory stays at 512 KiB
 * however many images there are.
 */

export interface BoundsResult {
  min: number;
  max: number;
  files: number;
  pixels: number;
  skipped: Array<{ file: string; code: ErrorCode; message: string }>;
}

export interface BoundsOptions {
  low?: number;
  high?: number;
  round?: boolean;
  onProgress?: (done: number, total: number, file: string) => void;
}

const TIFF_NAME = /\.tiff?$/i;

export async function listTiffs(paths: string[]): Promise<string[]> {
  const found: string[] = [];
  const walk = async (path: string, explicit: boolean): Promise<void> => {
    let info;
    try {
      info = await stat(path);
    } catch {
      if (explicit) found.push(path); // reported as unreadable later
      return;
    }
    if (info.isDirectory()) {
      const entries = (await readdir(path)).sort();
      for (const e of entries) if (!e.startsWith('.')) await walk(join(path, e), false);
    } else if (explicit || TIFF_NAME.test(path)) {
      found.push(path);
    }
  };
  for (const p of paths) await walk(p, true);
  return found;
}

export function roundToHundred(v: number): number {
  return Math.round(v / 100) * 100;
}

export async function computeBounds(paths: string[], o: BoundsOptions = {}): Promise<BoundsResult> {
  const files = await listTiffs(paths);
  const hist = new Float64Array(65536);
  const skipped: BoundsResult['skipped'] = [];
  let pixels = 0;
  let used = 0;
  for (let i = 0; i < files.length; i++) {
    try {
      const image = await decodeTiffFile(files[i]);
      histogram16(image.data, hist);
      pixels += image.data.length;
      used++;
    } catch (err) {
      const e = toXrayError(err, 'TIFF_CORRUPT_DATA');
      skipped.push({ file: files[i], code: e.code, message: e.message });
    }
    o.onProgress?.(i + 1, files.length, files[i]);
  }
  if (pixels === 0) throw new Error(`no readable 16-bit TIFF under ${paths.join(', ')}`);
  const [min, max] = percentilesFromHistogram(hist, [o.low ?? 0.01, o.high ?? 99.99]);
  const round = o.round ?? true;
  return { min: round ? roundToHundred(min) : min, max: round ? roundToHundred(max) : max, files: used, pixels, skipped };
}
