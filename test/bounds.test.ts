import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, pythonInline, tempDir } from './helpers.js';

describe('xray-qc bounds', () => {
  let dir: string;
  let numpy: { min: number; max: number; low5: number; high95: number; pixels: number };
  beforeAll(() => {
    dir = tempDir('xray-qc-bounds-');
    expect(cli(['synth', '--out', join(dir, 'a'), '--count', '3', '--seed', '4', '--width', '301', '--height', '517', '--compression', 'lzw']).code).toBe(0);
    expect(cli(['synth', '--out', join(dir, 'b', 'nested'), '--count', '2', '--seed', '9', '--width', '233', '--height', '411', '--abnormal-rate', '1']).code).toBe(0);
    writeFileSync(join(dir, 'b', 'broken.tif'), 'not a tiff');
    mkdirSync(join(dir, 'b', 'other'));
    writeFileSync(join(dir, 'b', 'other', 'notes.txt'), 'ignored: not a .tif name');
    // NumPy over the same files (read back with OpenCV/libtiff, independent of our decoder).
    const out = pythonInline(
      `
import numpy as np, cv2, glob, json, sys
files = sorted(glob.glob(sys.argv[1] + '/**/electrode_*.tif', recursive=True))
a = np.concatenate([cv2.imread(f, cv2.IMREAD_UNCHANGED).ravel() for f in files])
lo, hi = np.percentile(a, [0.01, 99.99]); l5, h95 = np.percentile(a, [5, 95])
print(json.dumps({'min': float(lo), 'max': float(hi), 'low5': float(l5), 'high95': float(h95), 'pixels': int(a.size)}))
`,
      [dir],
    );
    numpy = JSON.parse(out) as typeof numpy;
  });

  it('--no-round equals np.percentile over all pixels of all files, skipping bad ones', () => {
    const r = cli(['bounds', '--no-round', '--json', dir]);
    expect(r.code).toBe(0);
    const got = JSON.parse(r.stdout) as { min: number; max: number; files: number; pixels: number; skipped: Array<{ file: string; code: string }> };
    expect(got.min).toBe(numpy.min);
    expect(got.max).toBe(numpy.max);
    expect(got.files).toBe(5);
    expect(got.pixels).toBe(numpy.pixels);
    expect(got.skipped.map((s) => s.code)).toEqual(['TIFF_NOT_TIFF']);
    expect(r.stderr).toContain('broken.tif');
  });

  it('other percentiles, and rounding to the nearest hundred by default', () => {
    const exact = JSON.parse(cli(['bounds', '--no-round', '--low', '5', '--high', '95', dir]).stdout) as { min: number; max: number };
    expect([exact.min, exact.max]).toEqual([numpy.low5, numpy.high95]);
    const rounded = JSON.parse(cli(['bounds', dir]).stdout) as { min: number; max: number };
    expect(rounded.min).toBe(Math.round(numpy.min / 100) * 100);
    expect(rounded.max).toBe(Math.round(numpy.max / 100) * 100);
  });
});
