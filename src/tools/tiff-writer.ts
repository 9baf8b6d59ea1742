import { deflateSync } from 'node:zlib';

/**
 * A small writer for 16-bit grayscale TIFFs (classic, strips), used by `synth`, the tests and the
 * benchmarks. Other tools (ImageMagick, tifffile, OpenCV) write the files the decoder is tested on
 * as well; this one lets tests shape odd and broken files byte by byte.
 */

export type WriteCompression = 'none' | 'deflate' | 'lzw';

export interface WriteOptions {
  compression?: WriteCompression;
  predictor?: boolean;
  rowsPerStrip?: number;
  bigEndian?: boolean;
  minIsWhite?: boolean;
}

const COMPRESSION_CODE: Record<WriteCompression, number> = { none: 1, lzw: 5, deflate: 8 };

export function encodeTiff16(width: number, height: number, data: Uint16Array, options: WriteOptions = {}): Buffer {
  const compression = options.compression ?? 'none';
  const predictor = compression !== 'none' && (options.predictor ?? false);
  const rowsPerStrip = Math.min(options.rowsPerStrip ?? Math.max(1, Math.floor(65536 / (width * 2))), height);
  const le = !options.bigEndian;
  const strips: Buffer[] = [];
  for (let y = 0; y < height; y += rowsPerStrip) {
    const rows = Math.min(rowsPerStrip, height - y);
    const raw = Buffer.alloc(rows * width * 2);
    for (let r = 0; r < rows; r++) {
      let prev = 0;
      for (let x = 0; x < width; x++) {
        const v = data[(y + r) * width + x];
        const out = predictor ? (v - prev) & 0xffff : v;
        prev = v;
        if (le) raw.writeUInt16LE(out, (r * width + x) * 2);
        else raw.writeUInt16BE(out, (r * width + x) * 2);
      }
    }
    strips.push(compression === 'deflate' ? deflateSync(raw) : compression === 'lzw' ? lzwEncode(raw) : raw);
  }
  const tags: Array<[tag: number, type: number, values: number[]]> = [
    [256, 4, [width]],
    [257, 4, [height]],
    [258, 3, [16]],
    [259, 3, [COMPRESSION_CODE[compression]]],
    [262, 3, [options.minIsWhite ? 0 : 1]],
    [273, 4, []], // StripOffsets, filled below
    [277, 3, [1]],
    [278, 4, [rowsPerStrip]],
    [279, 4, strips.map((s) => s.length)],
    [284, 3, [1]],
    ...(predictor ? [[317, 3, [2]] as [number, number, number[]]] : []),
    [339, 3, [1]],
  ];
  const ifdOffset = 8;
  const ifdSize = 2 + tags.length * 12 + 4;
  const extraStart = ifdOffset + ifdSize;
  // Out-of-line values: strip offsets and byte counts when there is more than one strip.
  const outOfLine = (values: number[], type: number): boolean => values.length * (type === 3 ? 2 : 4) > 4;
  let cursor = extraStart;
  const offsetsAt = cursor;
  if (strips.length > 1) cursor += strips.length * 4;
  const countsAt = cursor;
  if (strips.length > 1) cursor += strips.length * 4;
  let dataAt = cursor;
  const stripOffsets = strips.map((s) => {
    const at = dataAt;
    dataAt += s.length;
    return at;
  });
  tags[5][2] = stripOffsets;
  const file = Buffer.alloc(dataAt);
  const u16 = (v: number, at: number): number => (le ? file.writeUInt16LE(v, at) : file.writeUInt16BE(v, at));
  const u32 = (v: number, at: number): number => (le ? file.writeUInt32LE(v, at) : file.writeUInt32BE(v, at));
  file.write(le ? 'II' : 'MM', 0, 'latin1');
  u16(42, 2);
  u32(ifdOffset, 4);
  u16(tags.length, ifdOffset);
  tags.forEach(([tag, type, values], i) => {
    const at = ifdOffset + 2 + i * 12;
    u16(tag, at);
    u16(type, at + 2);
    u32(values.length, at + 4);
    if (outOfLine(values, type)) {
      const where = tag === 273 ? offsetsAt : countsAt;
      u32(where, at + 8);
      values.forEach((v, k) => u32(v, where + k * 4));
    } else if (type === 3) {
      values.forEach((v, k) => u16(v, at + 8 + k * 2));
    } else {
      u32(values[0], at + 8);
    }
  });
  u32(0, ifdOffset + 2 + tags.length * 12);
  let at = stripOffsets[0];
  for (const s of strips) {
    s.copy(file, at);
    at += s.length;
  }
  return file;
}

/** TIFF LZW encoder (MSB-first, early change), the inverse of codecs.ts's decoder. */
export function lzwEncode(src: Uint8Array): Buffer {
  const out: number[] = [];
  let bitBuf = 0;
  let bitCount = 0;
  let width = 9;
  const emit = (code: number): void => {
    bitBuf = (bitBuf << width) | code;
    bitCount += width;
    while (bitCount >= 8) {
      bitCount -= 8;
      out.push((bitBuf >>> bitCount) & 0xff);
    }
    bitBuf &= (1 << bitCount) - 1;
  };
  let table = new Map<number, number>();
  let next = 258;
  emit(256);
  if (src.length === 0) {
    emit(257);
  } else {
    let w = src[0];
    for (let i = 1; i < src.length; i++) {
      const c = src[i];
      const key = w * 256 + c;
      const found = table.get(key);
      if (found !== undefined) {
        w = found;
        continue;
      }
      emit(w);
      table.set(key, next++);
      if (next === 1 << width && width < 12) width++; // the decoder, one entry behind, switches at 2^w − 1
      if (next === 4094) {
        emit(256);
        table = new Map();
        next = 258;
        width = 9;
      }
      w = c;
    }
    emit(w);
    emit(257);
  }
  if (bitCount > 0) out.push((bitBuf << (8 - bitCount)) & 0xff);
  return Buffer.from(out);
}
