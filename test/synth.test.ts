import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeTiffFile } from '../src/decode/capture-file.js';
import { percentiles16 } from '../src/convert/percentile.js';
import { cli, pythonInline, tempDir } from './helpers.js';

describe('xray-qc synth', () => {
  it('writes electrode-like captures in the paper size range, labels.csv, deterministically', async () => {
    const a = tempDir();
    const b = tempDir();
    for (const dir of [a, b]) {
      const r = cli(['synth', '--out', dir, '--count', '4', '--seed', '11', '--abnormal-rate', '0.5', '--compression', 'lzw']);
      expect(r.code, r.stderr).toBe(0);
    }
    const csv = readFileSync(join(a, 'labels.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('file,label,anomaly,bundle');
    expect(csv).toHaveLength(5);
    for (const row of csv.slice(1)) {
      const [file, label, anomaly, bundle] = row.split(',');
      expect(readFileSync(join(a, file)).equals(readFileSync(join(b, file)))).toBe(true);
      expect(label === 'normal' ? anomaly === '' : anomaly.length > 0).toBe(true);
      expect(bundle).toMatch(/^B\d\d$/);
      const img = await decodeTiffFile(join(a, file));
      expect(img.width).toBeGreaterThanOrEqual(1119);
      expect(img.width).toBeLessThanOrEqual(1219);
      expect(img.height).toBeGreaterThanOrEqual(2053);
      expect(img.height).toBeLessThanOrEqual(2115);
      let inCoatingRange = 0;
      for (const v of img.data) if (v >= 1700 && v <= 2800) inCoatingRange++;
      expect(inCoatingRange / img.data.length).toBeGreaterThan(0.8); // coating mostly 1700–2800
      const [p1, p99] = percentiles16(img.data, [1, 99]);
      expect(p99 - p1).toBeGreaterThan(300); // textured, not flat
      expect(img.data[0]).toBeGreaterThan(8000); // bright uncoated border
    }
    // libtiff (OpenCV) reads our LZW files too.
    const shape = pythonInline('import cv2, sys; a = cv2.imread(sys.argv[1], cv2.IMREAD_UNCHANGED); print(a.dtype, a.shape)', [join(a, 'electrode_0001.tif')]);
    expect(shape).toMatch(/^uint16 \(\d{4}, \d{4}\)/);
  });
});

describe('xray-qc demo and preprocess --png (full-size demo model)', () => {
  it('demo: embedded broker, daemon, synthetic captures; verdicts arrive over MQTT; audit summary at the end', () => {
    const r = cli(['demo', '--count', '3', '--interval-ms', '50'], { timeoutMs: 600_000 });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^broker mqtt:\/\/127\.0\.0\.1:\d+ \(aedes\)/);
    expect(lines[1]).toMatch(/trained on synthetic captures only \(leave-one-bundle-out balanced accuracy \d+\.\d % \(local\)\)/);
    const table = lines.filter((l) => /^\s+\d+ {2}\S+\.tif/.test(l));
    expect(table).toHaveLength(4);
    expect(table.filter((l) => / (PASS|FLAG) /.test(l))).toHaveLength(3);
    expect(table.find((l) => l.includes('corrupt_capture.tif'))).toMatch(/ERROR TIFF_/);
    expect(lines.at(-1)).toMatch(/^audit summary: 4 inspections — \d pass, \d flag, 1 error; .*4\/4 verdicts received over MQTT$/);
  });

  it('preprocess writes the 2000×1000 tensor and an 8-bit PNG of what the model saw', () => {
    const dir = tempDir();
    expect(cli(['synth', '--out', dir, '--count', '1']).code).toBe(0);
    const r = cli(['preprocess', '--out', join(dir, 't.npy'), '--png', join(dir, 'v.png'), join(dir, 'electrode_0001.tif')]);
    expect(r.code, r.stderr).toBe(0);
    const out = pythonInline(
      `import numpy as np, cv2, sys
t = np.load(sys.argv[1]); v = cv2.imread(sys.argv[2], cv2.IMREAD_UNCHANGED)
back = np.round((t[0, 0] * 0.229 + 0.485) * 255).astype(np.uint8)
print(t.dtype, t.shape, v.dtype, v.shape, int(np.abs(back.astype(int) - v.astype(int)).max()))`,
      [join(dir, 't.npy'), join(dir, 'v.png')],
    );
    expect(out.trim()).toBe('float32 (1, 3, 2000, 1000) uint8 (2000, 1000) 0');
    // either output alone (the PNG used to need the 24 MB tensor too); neither is a clear error
    const pngOnly = cli(['preprocess', '--png', join(dir, 'only.png'), join(dir, 'electrode_0001.tif')]);
    expect(pngOnly.code, pngOnly.stderr).toBe(0);
    expect(readFileSync(join(dir, 'only.png')).equals(readFileSync(join(dir, 'v.png')))).toBe(true);
    const neither = cli(['preprocess', join(dir, 'electrode_0001.tif')]);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toBe('xray-qc preprocess: give --out T.npy (the tensor), --png V.png (the 8-bit view), or both\n');
  });

  it('--abnormal-per-bundle gives exactly k abnormal captures in every bundle; --abnormal-rate is a probability per capture', () => {
    const dir = tempDir();
    const r = cli(['synth', '--out', dir, '--count', '23', '--bundle-size', '10', '--abnormal-per-bundle', '3', '--seed', '5', '--width', '40', '--height', '60']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ files: 23, abnormal: 9, bundles: 3 });
    const rows = readFileSync(join(dir, 'labels.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
    const per = new Map<string, number>();
    for (const [, label, , bundle] of rows) per.set(bundle, (per.get(bundle) ?? 0) + (label === 'abnormal' ? 1 : 0));
    expect([...per.entries()]).toEqual([['B01', 3], ['B02', 3], ['B03', 3]]);
    // the positions move with the seed, and the images of a seed are those of the probabilistic run
    const other = tempDir();
    cli(['synth', '--out', other, '--count', '23', '--bundle-size', '10', '--abnormal-per-bundle', '3', '--seed', '6', '--width', '40', '--height', '60']);
    expect(readFileSync(join(other, 'labels.csv'), 'utf8')).not.toBe(readFileSync(join(dir, 'labels.csv'), 'utf8'));
    const rate = cli(['synth', '--out', tempDir(), '--count', '23', '--abnormal-rate', '0.3', '--seed', '5', '--width', '40', '--height', '60']);
    expect(JSON.parse(rate.stdout).abnormal).not.toBe(Math.round(0.3 * 23)); // this seed draws another count: a probability, as documented
  });
});
