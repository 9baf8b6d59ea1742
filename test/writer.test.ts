import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeTiff } from '../src/decode/tiff.js';
import { encodeTiff16, type WriteOptions } from '../src/tools/tiff-writer.js';
import { prng } from '../src/tools/random.js';
import { pythonInline, tempDir } from './helpers.js';

function image(width: number, height: number, seed: number): Uint16Array {
  const rand = prng(seed);
  const data = new Uint16Array(width * height);
  for (let i = 0; i < data.length; i++) data[i] = 1700 + Math.floor(rand() * 1100) + (i % width < 5 ? 9000 : 0);
  return data;
}

const VARIANTS: WriteOptions[] = [
  { compression: 'none' },
  { compression: 'deflate', predictor: true, rowsPerStrip: 7 },
  { compression: 'lzw' },
  { compression: 'lzw', predictor: true, bigEndian: true, rowsPerStrip: 64 },
];

describe('our TIFF writer produces files libtiff (OpenCV) reads back exactly', () => {
  it.each(VARIANTS)('%o', (options) => {
    const [w, h] = [301, 257];
    const data = image(w, h, 7);
    const dir = tempDir();
    const file = join(dir, 'x.tif');
    writeFileSync(file, encodeTiff16(w, h, data, options));
    const out = pythonInline(
      `import cv2, sys, numpy as np, hashlib
a = cv2.imread(sys.argv[1], cv2.IMREAD_UNCHANGED)
print(a.dtype, a.shape[1], a.shape[0], hashlib.sha256(a.astype('<u2').tobytes()).hexdigest())`,
      [file],
    ).trim();
    const digest = createHash('sha256').update(Buffer.from(data.buffer)).digest('hex');
    expect(out).toBe(`uint16 ${w} ${h} ${digest}`);
  });

  it.each(VARIANTS)('round-trips through our own decoder: %o', async (options) => {
    const data = image(123, 77, 3);
    const decoded = await decodeTiff(encodeTiff16(123, 77, data, options));
    expect(Buffer.from(decoded.data.buffer).equals(Buffer.from(data.buffer))).toBe(true);
  });
});
