import { writeFileSync, mkdirSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { join } from 'node:path';
import { encodeTiff16 } from '../../src/tools/tiff-writer.js';
import { synthElectrode } from '../../src/tools/synth.js';
import { pythonInline } from '../helpers.js';

/**
 * Malformed and odd TIFFs, each with the outcome `score` must give: an error code, or 'scored'
 * for files that are odd but valid. Built from our writer with byte patches, and from tifffile.
 */

export interface Case { file: string; expect: string }

const W = 97;
const H = 131;

function base(options: Parameters<typeof encodeTiff16>[3] = {}): Buffer {
  const img = synthElectrode(5, 'bubble', { width: W, height: H });
  return encodeTiff16(W, H, img.data, options);
}

/** Entry offset of `tag` in the first IFD of a little-endian classic file written by our writer. */
function entryAt(buf: Buffer, tag: number): number {
  const ifd = buf.readUInt32LE(4);
  const n = buf.readUInt16LE(ifd);
  for (let i = 0; i < n; i++) {
    const at = ifd + 2 + i * 12;
    if (buf.readUInt16LE(at) === tag) return at;
  }
  throw new Error(`tag ${tag} not found`);
}

function patch(buf: Buffer, tag: number, value: number, field: 'value' | 'count' | 'tag' | 'type' = 'value'): Buffer {
  const b = Buffer.from(buf);
  const at = entryAt(b, tag);
  if (field === 'tag') b.writeUInt16LE(value, at);
  else if (field === 'type') b.writeUInt16LE(value, at + 2);
  else if (field === 'count') b.writeUInt32LE(value, at + 4);
  else if (b.readUInt16LE(at + 2) === 3) b.writeUInt16LE(value, at + 8);
  else b.writeUInt32LE(value, at + 8);
  return b;
}

export function writeMalformedSet(dir: string): Case[] {
  mkdirSync(dir, { recursive: true });
  const cases: Case[] = [];
  const add = (file: string, bytes: Uint8Array, expect: string): void => {
    writeFileSync(join(dir, file), bytes);
    cases.push({ file, expect });
  };
  const good = base({ rowsPerStrip: 16 });
  const deflated = base({ compression: 'deflate', rowsPerStrip: H });
  const lzw = base({ compression: 'lzw', rowsPerStrip: H });
  const firstStrip = (b: Buffer): number => b.readUInt32LE(entryAt(b, 273) + 8);

  add('empty.tif', new Uint8Array(0), 'TIFF_TRUNCATED');
  add('five-bytes.tif', Buffer.from('II*\0\x08'), 'TIFF_TRUNCATED');
  add('text.tif', Buffer.from('this is a text file, not an image\n'), 'TIFF_NOT_TIFF');
  add('png-renamed.tif', Buffer.from('\x89PNG\r\n\x1a\n\0\0\0\rIHDR', 'latin1'), 'TIFF_NOT_TIFF');
  add('bad-magic.tif', Buffer.concat([Buffer.from('II'), Buffer.from([41, 0, 8, 0, 0, 0]), good.subarray(8)]), 'TIFF_NOT_TIFF');
  const ifdBeyond = Buffer.from(good);
  ifdBeyond.writeUInt32LE(good.length + 1000, 4);
  add('ifd-beyond-file.tif', ifdBeyond, 'TIFF_BAD_OFFSET');
  const hugeCount = Buffer.from(good);
  hugeCount.writeUInt16LE(65535, 8);
  add('ifd-entry-count-huge.tif', hugeCount, 'TIFF_BAD_OFFSET');
  add('strip-offset-beyond.tif', patch(base({ rowsPerStrip: H }), 273, 10_000_000), 'TIFF_BAD_OFFSET');
  add('truncated-half.tif', good.subarray(0, Math.floor(good.length / 2)), 'TIFF_TRUNCATED');
  add('truncated-deflate.tif', deflated.subarray(0, deflated.length - 200), 'TIFF_TRUNCATED');
  add('width-zero.tif', patch(good, 256, 0), 'TIFF_EMPTY_IMAGE');
  add('height-zero.tif', patch(good, 257, 0), 'TIFF_EMPTY_IMAGE');
  add('too-many-pixels.tif', patch(patch(base({ rowsPerStrip: H }), 256, 100_000), 257, 100_000), 'TIFF_TOO_LARGE');
  add('jpeg-compression.tif', patch(good, 259, 7), 'TIFF_UNSUPPORTED_COMPRESSION');
  add('unknown-compression.tif', patch(good, 259, 12345), 'TIFF_UNSUPPORTED_COMPRESSION');
  const corruptDeflate = Buffer.from(deflated);
  corruptDeflate.fill(0xa5, firstStrip(deflated) + 2, firstStrip(deflated) + 40);
  add('corrupt-deflate.tif', corruptDeflate, 'TIFF_CORRUPT_DATA');
  const corruptLzw = Buffer.from(lzw);
  corruptLzw.fill(0xff, firstStrip(lzw), firstStrip(lzw) + 64);
  add('corrupt-lzw.tif', corruptLzw, 'TIFF_CORRUPT_DATA');
  const shortDeflate = Buffer.from(deflated);
  // A valid deflate stream that holds too few bytes for the strip.
  const tiny = deflateSync(Buffer.alloc(10));
  tiny.copy(shortDeflate, firstStrip(deflated));
  add('deflate-too-short.tif', patch(shortDeflate, 279, tiny.length), 'TIFF_CORRUPT_DATA');
  const selfLoop = Buffer.from(good);
  selfLoop.writeUInt32LE(8, 8 + 2 + selfLoop.readUInt16LE(8) * 12);
  add('ifd-loop-self.tif', selfLoop, 'TIFF_IFD_LOOP');
  add('missing-strip-offsets.tif', patch(good, 273, 65000, 'tag'), 'TIFF_BAD_TAG');
  add('missing-byte-counts.tif', patch(good, 279, 65001, 'tag'), 'TIFF_BAD_TAG');
  add('predictor-float.tif', patch(base({ compression: 'deflate', predictor: true }), 317, 3), 'TIFF_UNSUPPORTED_PREDICTOR');
  add('byte-counts-count-huge.tif', patch(good, 279, 1_000_000_000, 'count'), 'TIFF_BAD_OFFSET');
  add('bits-12.tif', patch(good, 258, 12), 'TIFF_UNSUPPORTED_BITS');
  add('photometric-rgb.tif', patch(good, 262, 2), 'TIFF_UNSUPPORTED_PHOTOMETRIC');
  add('sample-format-signed.tif', patch(good, 339, 2), 'TIFF_UNSUPPORTED_SAMPLE_FORMAT');
  add('unknown-field-type.tif', patch(good, 278, 99, 'type'), 'TIFF_BAD_TAG');
  add('rows-per-strip-zero.tif', patch(good, 278, 0), 'TIFF_BAD_TAG');

  // Odd but valid: these must be scored.
  add('extra-bytes-at-end.tif', Buffer.concat([good, Buffer.alloc(4096, 0x55)]), 'scored');
  add('one-pixel.tif', encodeTiff16(1, 1, new Uint16Array([2000])), 'scored');
  add('one-row.tif', encodeTiff16(3000, 1, new Uint16Array(3000).map((_, i) => 1700 + (i % 1100))), 'scored');
  add('flat.tif', encodeTiff16(64, 64, new Uint16Array(64 * 64).fill(2222)), 'scored');
  add('strip-per-row-lzw.tif', base({ compression: 'lzw', rowsPerStrip: 1 }), 'scored');

  // Files written by tifffile in types and layouts we refuse.
  pythonInline(
    `
import numpy as np, tifffile, sys
d = sys.argv[1]
a = (np.arange(40 * 30).reshape(40, 30) * 37 % 65536)
tifffile.imwrite(d + '/uint8.tif', (a % 256).astype(np.uint8))
tifffile.imwrite(d + '/float32.tif', a.astype(np.float32))
tifffile.imwrite(d + '/int16.tif', (a - 30000).astype(np.int16))
tifffile.imwrite(d + '/uint32.tif', a.astype(np.uint32))
tifffile.imwrite(d + '/rgb16.tif', np.stack([a, a, a], -1).astype(np.uint16), photometric='rgb')
tifffile.imwrite(d + '/gray-alpha16.tif', np.stack([a, a], -1).astype(np.uint16), photometric='minisblack', extrasamples=['unassalpha'])
tifffile.imwrite(d + '/bilevel.tif', (a % 2).astype(bool))
`,
    [dir],
  );
  cases.push(
    { file: 'uint8.tif', expect: 'TIFF_UNSUPPORTED_BITS' },
    { file: 'float32.tif', expect: 'TIFF_UNSUPPORTED_BITS' },
    { file: 'int16.tif', expect: 'TIFF_UNSUPPORTED_SAMPLE_FORMAT' },
    { file: 'uint32.tif', expect: 'TIFF_UNSUPPORTED_BITS' },
    { file: 'rgb16.tif', expect: 'TIFF_UNSUPPORTED_SAMPLES' },
    { file: 'gray-alpha16.tif', expect: 'TIFF_UNSUPPORTED_SAMPLES' },
    { file: 'bilevel.tif', expect: 'TIFF_UNSUPPORTED_BITS' },
  );
  mkdirSync(join(dir, 'a-directory.tif'), { recursive: true });
  cases.push({ file: 'a-directory.tif', expect: 'FILE_UNREADABLE' }, { file: 'does-not-exist.tif', expect: 'FILE_UNREADABLE' });
  return cases;
}
