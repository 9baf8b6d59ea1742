import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeTiffFile } from '../src/decode/tiff.js';
import { makeKit, readNpy, tempDir, type KitEntry } from './helpers.js';

describe('TIFF decoding of files written by other tools', () => {
  let dir: string;
  let kit: KitEntry[];
  beforeAll(() => {
    dir = tempDir();
    kit = makeKit(dir);
  });

  it('covers every encoding the scoring contract names', () => {
    const descs = kit.map((k) => `${k.tool} ${k.desc}`).join('\n');
    for (const needle of ['lzw', 'deflate8', 'deflate32946', 'packbits', 'RLE', 'tiled', 'BigTIFF', 'be', 'MinIsWhite', 'two pages', 'predictor=True']) {
      expect(descs).toContain(needle);
    }
    expect(new Set(kit.map((k) => k.tool))).toEqual(new Set(['tifffile', 'opencv', 'imagemagick']));
  });

  it('decodes each file to exactly the source pixels', async () => {
    const source = readNpy(join(dir, 'source.npy'));
    const [h, w] = source.shape;
    const failures: string[] = [];
    for (const entry of kit) {
      const image = await decodeTiffFile(join(dir, entry.file));
      expect([entry.file, image.width, image.height]).toEqual([entry.file, w, h]);
      let bad = 0;
      for (let i = 0; i < image.data.length; i++) {
        const want = entry.invert ? 65535 - source.data[i] : source.data[i];
        if (image.data[i] !== want) bad++;
      }
      if (bad) failures.push(`${entry.file} (${entry.tool} ${entry.desc}): ${bad} pixels differ`);
    }
    expect(failures).toEqual([]);
  });
});
