import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { percentiles16 } from '../src/convert/percentile.js';
import { boundsLut } from '../src/convert/conversion.js';
import { pythonInline, readNpy, tempDir } from './helpers.js';

describe('percentiles equal NumPy (linear method)', () => {
  it.each([
    [1, 10007], [2, 1], [3, 2], [4, 65536 + 3], [5, 2_371_000],
  ])('seed %i, %i pixels', (seed, n) => {
    const dir = tempDir();
    const qs = [0, 0.01, 0.5, 25, 50, 99.99, 100];
    const out = pythonInline(
      `
import numpy as np, sys, json
rng = np.random.default_rng(int(sys.argv[1])); n = int(sys.argv[2])
a = np.concatenate([rng.normal(2200, 300, n - n // 10), rng.integers(0, 65536, n // 10)]).clip(0, 65535).astype(np.uint16)
np.save(sys.argv[3] + '/a.npy', a)
print(json.dumps([float(v) for v in np.percentile(a, json.loads(sys.argv[4]))]))
`,
      [String(seed), String(n), dir, JSON.stringify(qs)],
    );
    const want = JSON.parse(out) as number[];
    const a = readNpy(join(dir, 'a.npy')).data as Uint16Array;
    expect(percentiles16(a, qs)).toEqual(want);
  });
});

describe('global conversion table', () => {
  it('maps the bounds to 0 and 255 with round-half-up in between, clamped outside', () => {
    const lut = boundsLut({ min: 1700, max: 2800 });
    expect(lut[0]).toBe(0);
    expect(lut[1700]).toBe(0);
    expect(lut[2800]).toBe(255);
    expect(lut[65535]).toBe(255);
    // (2250-1700)/1100*255 = 127.5 → 128 (floor(x + 0.5))
    expect(lut[2250]).toBe(128);
    for (let x = 1; x < 65536; x++) expect(lut[x]).toBeGreaterThanOrEqual(lut[x - 1]);
  });
  it('an empty range maps everything to 0 instead of dividing by zero', () => {
    const lut = boundsLut({ min: 3000, max: 3000 });
    expect(Math.max(...lut)).toBe(0);
  });
});
