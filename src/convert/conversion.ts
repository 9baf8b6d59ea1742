import type { Gray16Image } from '../decode/tiff.js';
import { percentiles16 } from './percentile.js';

/**
 * 16 → 8 bit conversion, the paper's four methods (section 2.3). Each method is a 65,536-entry
 * lookup table, so converting a capture is one table read per pixel.
 *
 * global (method 2): v = floor((clamp(x, min, max) − min) / (max − min) · 255 + 0.5).
 * The paper's equation (1) omits "− min" and scales by 256, which overflows uint8 at max; this is
 * the intended mapping (docs/scoring.md).
 */

export const CONVERSIONS = ['naive', 'global', 'local', 'mixed'] as const;
export type Conversion = (typeof CONVERSIONS)[number];

export interface Bounds {
  min: number;
  max: number;
}

/** Percentiles that define the per-image bounds of method 3. */
export const LOCAL_PERCENTILES = { low: 0.01, high: 99.99 } as const;

export function boundsLut(bounds: Bounds): Uint8Array {
  const { min, max } = bounds;
  const lut = new Uint8Array(65536);
  if (!(max > min)) {
    // Empty range (a flat image's local bounds): every pixel clamps to the one bound, which maps
    // to 0 — what NumPy's 0/0 → NaN → uint8 gives too; never divide by zero.
    return lut;
  }
  const span = max - min;
  for (let x = 0; x < 65536; x++) {
    const c = x < min ? min : x > max ? max : x;
    lut[x] = Math.floor(((c - min) / span) * 255 + 0.5);
  }
  return lut;
}

export function naiveLut(): Uint8Array {
  const lut = new Uint8Array(65536);
  for (let x = 0; x < 65536; x++) lut[x] = x >> 8;
  return lut;
}

export function localBounds(image: Gray16Image): Bounds {
  const [min, max] = percentiles16(image.data, [LOCAL_PERCENTILES.low, LOCAL_PERCENTILES.high]);
  return { min, max };
}

export function applyLut(data: Uint16Array, lut: Uint8Array, out: Uint8Array = new Uint8Array(data.length)): Uint8Array {
  for (let i = 0; i < data.length; i++) out[i] = lut[data[i]];
  return out;
}

/** Reusable conversion for one model: the tables that do not depend on the image are built once. */
export class Converter {
  readonly conversion: Conversion;
  private readonly globalTable: Uint8Array | null;
  private readonly naiveTable: Uint8Array | null;

  constructor(conversion: Conversion, globalBounds: Bounds | null) {
    this.conversion = conversion;
    const needsGlobal = conversion === 'global' || conversion === 'mixed';
    if (needsGlobal && !globalBounds) throw new Error(`conversion '${conversion}' needs global bounds`);
    this.globalTable = needsGlobal && globalBounds ? boundsLut(globalBounds) : null;
    this.naiveTable = conversion === 'naive' || conversion === 'mixed' ? naiveLut() : null;
  }

  /**
   * The lookup table of each input channel for this image. Gray methods return the same table
   * three times (replication), so later stages resize the plane once.
   */
  tables(image: Gray16Image): { luts: [Uint8Array, Uint8Array, Uint8Array]; bounds: Bounds | null } {
    switch (this.conversion) {
      case 'naive':
        return { luts: [this.naiveTable!, this.naiveTable!, this.naiveTable!], bounds: null };
      case 'global':
        return { luts: [this.globalTable!, this.globalTable!, this.globalTable!], bounds: null };
      case 'local': {
        const bounds = localBounds(image);
        const lut = boundsLut(bounds);
        return { luts: [lut, lut, lut], bounds };
      }
      case 'mixed': {
        const bounds = localBounds(image);
        return { luts: [this.naiveTable!, this.globalTable!, boundsLut(bounds)], bounds };
      }
    }
  }
}
