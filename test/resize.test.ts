import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planResize, resizeLinear } from '../src/prepare/resize.js';
import { pythonInline, readNpy, ROOT, tempDir } from './helpers.js';

// Textured, non-flat 8-bit planes resized by OpenCV itself, compared pixel by pixel.
const CASES: Array<[number, number, number, number]> = [
  // [srcW, srcH, dstW, dstH]
  [1145, 2072, 1000, 2000], // the paper's mean capture → model input
  [1219, 2115, 1000, 2000],
  [203, 371, 64, 128], // downscale, odd ratios
  [37, 23, 100, 61], // upscale
  [80, 60, 40, 30], // exact 2× (OpenCV switches to INTER_AREA)
  [300, 200, 300, 200], // identity
  [257, 129, 256, 128],
];

describe('bilinear resize matches cv2.resize(INTER_LINEAR)', () => {
  it.each(CASES)('%i×%i → %i×%i', (sw, sh, dw, dh) => {
    const dir = tempDir();
    pythonInline(
      `
import numpy as np, cv2, sys
sw, sh, dw, dh = map(int, sys.argv[1:5])
rng = np.random.default_rng(sw * 7 + sh)
y, x = np.mgrid[0:sh, 0:sw]
img = (127 + 80 * np.sin(x / 5.3) * np.cos(y / 7.1) + rng.normal(0, 25, (sh, sw))).clip(0, 255).astype(np.uint8)
img[sh // 3, :] = 255
img[:, sw // 4] = 0
np.save(sys.argv[5] + '/src.npy', img)
np.save(sys.argv[5] + '/dst.npy', cv2.resize(img, (dw, dh), interpolation=cv2.INTER_LINEAR))
`,
      [String(sw), String(sh), String(dw), String(dh), dir],
    );
    const src = readNpy(join(dir, 'src.npy')).data as Uint8Array;
    const want = readNpy(join(dir, 'dst.npy')).data as Uint8Array;
    const got = resizeLinear(src, planResize(sw, sh, dw, dh));
    let maxDiff = 0;
    let differing = 0;
    for (let i = 0; i < want.length; i++) {
      const d = Math.abs(got[i] - want[i]);
      if (d) differing++;
      maxDiff = Math.max(maxDiff, d);
    }
    writeFileSync(join(dir, 'report.txt'), `${differing} ${maxDiff}`);
    expect(got.length).toBe(dw * dh);
    expect(maxDiff).toBeLessThanOrEqual(1); // the contract
    expect(differing).toBe(0); // what we actually achieve: bit-exact
  });
});

describe('the fused path (LUT → resize → normalise) equals the step-by-step one', () => {
  it.each([[1145, 2072, 100, 200], [203, 371, 64, 128], [37, 23, 100, 61], [80, 60, 40, 30], [50, 40, 50, 40]])('%i×%i → %i×%i', async (sw, sh, dw, dh) => {
    const { resizeLutInto } = await import('../src/prepare/resize.js');
    const { applyLut, boundsLut } = await import('../src/convert/conversion.js');
    const data = new Uint16Array(sw * sh).map((_, i) => 1500 + ((i * 7919) % 1500) + (i % sw < 3 ? 9000 : 0));
    const lut = boundsLut({ min: 1700, max: 2800 });
    const plan = planResize(sw, sh, dw, dh);
    const want = resizeLinear(applyLut(data, lut), plan);
    const tables = [0.1, 0.2, 0.3].map((k) => new Float32Array(256).map((_, v) => v * k - 1));
    const out = new Float32Array(3 * dw * dh);
    const plane = new Uint8Array(dw * dh);
    resizeLutInto(data, lut, plan, tables.map((table, c) => ({ table, offset: c * dw * dh })), out, plane);
    expect(Buffer.from(plane).equals(Buffer.from(want))).toBe(true);
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < want.length; i++) if (out[c * dw * dh + i] !== tables[c][want[i]]) throw new Error(`channel ${c} pixel ${i}`);
    }
  });
});

describe('the WebAssembly kernel equals the JavaScript path, bit for bit', async () => {
  const shared = new (await import('../src/prepare/wasm-resize.js')).WasmResizer();
  it.each([[1145, 2072, 1000, 2000], [1219, 2115, 1000, 2000], [203, 371, 64, 128], [37, 23, 100, 61], [81, 61, 43, 29], [7, 5, 3, 2]])('%i×%i → %i×%i', async (sw, sh, dw, dh) => {
    const { Preprocessor } = await import('../src/prepare/preprocessor.js');
    const { WasmResizer } = await import('../src/prepare/wasm-resize.js');
    const { execFileSync } = await import('node:child_process');
    const data = new Uint16Array(sw * sh).map((_, i) => 1500 + ((i * 7919) % 1500) + (i % sw < 3 ? 9000 : 0));
    for (const conversion of ['global', 'mixed'] as const) {
      const contract = { height: dh, width: dw, conversion, bounds: { min: 1700, max: 2800 }, mean: [0.485, 0.456, 0.406] as [number, number, number], std: [0.229, 0.224, 0.225] as [number, number, number] };
      const js = new Preprocessor(contract, null).run({ width: sw, height: sh, data }).tensor;
      const wasm = new Preprocessor(contract, new WasmResizer()).run({ width: sw, height: sh, data }).tensor;
      expect(Buffer.from(wasm.buffer).equals(Buffer.from(js.buffer))).toBe(true);
      // The capture decoded into the kernel's own memory (no copy in), on one kernel that has
      // seen every size before this one (its layout moves and its memory grows between them).
      const pre = new Preprocessor(contract, shared);
      const home = pre.pixelBuffer(sw * sh)!;
      home.set(data);
      const inPlace = pre.run({ width: sw, height: sh, data: home }).tensor;
      expect(Buffer.from(inPlace.buffer).equals(Buffer.from(js.buffer))).toBe(true);
      expect(js.some((v) => v !== js[0])).toBe(true); // not a constant image
    }
    if (sw === 7) expect(execFileSync(process.execPath, [join(ROOT, 'scripts/build-wasm.mjs'), '--check'], { encoding: 'utf8' })).toMatch(/matches/);
  });
});
