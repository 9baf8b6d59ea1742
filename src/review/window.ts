import { histogram16, percentilesFromHistogram } from '../convert/percentile.js';
import type { Gray16Image } from '../decode/tiff.js';

/**
 * The review page's display window: what a person sees, never what the model sees (the model's
 * view is rendered by the station's own path, render.ts). Computed from the capture's 16-bit
 * pixels, so a window set on the page has the capture's full depth to show, not the model's
 * 8 bits.
 *
 * The electrode region: the capture's histogram is split in two by Otsu's threshold. Where the
 * split is clear (the between-class variance is at least SEPARATION of the total; a single
 * Gaussian gives 2/π ≈ 0.64) and the darker class holds at least MIN_SHARE of the pixels, the
 * darker class is the electrode (the coating absorbs; the uncoated border and air are bright)
 * and the brighter one is left out. Otherwise the whole capture counts. The auto window is the
 * AUTO_PERCENTILES of the electrode's pixels.
 */

export const AUTO_PERCENTILES = { low: 0.5, high: 99.5 } as const;
export const SEPARATION = 0.8;
export const MIN_SHARE = 0.25;

export interface DisplayWindow {
  /** The auto window: 16-bit values shown as black and white. */
  low: number;
  high: number;
  /** The capture's range, for the sliders. */
  min: number;
  max: number;
  /** 'electrode' when the bright class was left out, 'whole' when the whole capture counted. */
  region: 'electrode' | 'whole';
  /** Otsu's threshold (the electrode is below it) and the electrode's share of the pixels. */
  threshold: number;
  share: number;
}

/** Otsu's threshold over a 16-bit histogram: the first value of the bright class, and how clearly it separates (η). */
export function otsu(hist: Float64Array): { threshold: number; separation: number } {
  let n = 0;
  let sum = 0;
  let sum2 = 0;
  for (let v = 0; v < 65536; v++) {
    n += hist[v];
    sum += v * hist[v];
    sum2 += v * v * hist[v];
  }
  const mean = sum / n;
  const total = sum2 / n - mean * mean;
  let best = -1;
  let threshold = 0;
  let n0 = 0;
  let s0 = 0;
  for (let t = 1; t < 65536; t++) {
    n0 += hist[t - 1];
    s0 += (t - 1) * hist[t - 1];
    if (hist[t] === 0 || n0 === 0 || n0 === n) continue; // only thresholds at occupied values change the split
    const w0 = n0 / n;
    const d = s0 / n0 - (sum - s0) / (n - n0);
    const between = w0 * (1 - w0) * d * d;
    if (between > best) {
      best = between;
      threshold = t;
    }
  }
  return { threshold, separation: total > 0 && best > 0 ? best / total : 0 };
}

export function displayWindow(image: Gray16Image): DisplayWindow {
  const hist = histogram16(image.data);
  let min = 0;
  while (min < 65535 && hist[min] === 0) min++;
  let max = 65535;
  while (max > 0 && hist[max] === 0) max--;
  const { threshold, separation } = otsu(hist);
  let below = 0;
  for (let v = 0; v < threshold; v++) below += hist[v];
  const share = below / image.data.length;
  const electrode = separation >= SEPARATION && share >= MIN_SHARE;
  if (electrode) hist.fill(0, threshold);
  const [lo, hi] = percentilesFromHistogram(hist, [AUTO_PERCENTILES.low, AUTO_PERCENTILES.high]);
  const low = Math.floor(lo);
  const high = Math.max(low + 1, Math.ceil(hi));
  return { low, high, min, max: Math.max(max, min + 1), region: electrode ? 'electrode' : 'whole', threshold: electrode ? threshold : max + 1, share: electrode ? share : 1 };
}

/**
 * The capture averaged over boxes down to width × height (box edges at whole source pixels, every
 * source pixel in exactly one box): the same extent as the model's input, so the heat map, which
 * covers that extent, lies on it the same way.
 */
export function boxDownscale(image: Gray16Image, width: number, height: number): Uint16Array {
  const { width: sw, height: sh, data } = image;
  const out = new Uint16Array(width * height);
  const xs = Int32Array.from({ length: width + 1 }, (_, i) => Math.floor((i * sw) / width));
  const row = new Float64Array(width);
  for (let oy = 0; oy < height; oy++) {
    const y0 = Math.floor((oy * sh) / height);
    const y1 = Math.max(y0 + 1, Math.floor(((oy + 1) * sh) / height));
    row.fill(0);
    for (let y = y0; y < y1; y++) {
      const line = y * sw;
      for (let ox = 0; ox < width; ox++) {
        const x1 = Math.max(xs[ox] + 1, xs[ox + 1]);
        let s = 0;
        for (let x = xs[ox]; x < x1; x++) s += data[line + x];
        row[ox] += s;
      }
    }
    for (let ox = 0; ox < width; ox++) out[oy * width + ox] = Math.round(row[ox] / ((y1 - y0) * (Math.max(xs[ox] + 1, xs[ox + 1]) - xs[ox])));
  }
  return out;
}

/** 16-bit values through a window to 8 bit: low → 0, high → 255, linear between. */
export function windowed(values: Uint16Array, low: number, high: number): Uint8Array {
  const out = new Uint8Array(values.length);
  const span = high - low;
  for (let i = 0; i < values.length; i++) {
    const t = (values[i] - low) / span;
    out[i] = t <= 0 ? 0 : t >= 1 ? 255 : Math.round(t * 255);
  }
  return out;
}
