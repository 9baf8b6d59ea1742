import { XrayError } from '../errors.js';

/**
 * Structural check of a TIFF / BigTIFF file before any library parses it: the header, the chain
 * of image directories (no loops, bounded length) and every tag value that lives outside its
 * entry must lie inside the file. Nothing here allocates more than the directory itself, so a
 * hostile count or offset is refused before anyone sizes a buffer by it.
 */

const TYPE_SIZES: Record<number, number> = {
  1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8,
};

const MAX_DIRECTORIES = 4096;

export interface TiffStructure {
  littleEndian: boolean;
  bigTiff: boolean;
  /** Offset of the first image directory (the page we decode). */
  firstIfd: number;
  directories: number;
  /** The first directory's entries by tag number (the first entry wins if a tag repeats). */
  tags: Map<number, TagEntry>;
}

/**
 * One directory entry whose value (inline or not) was checked to lie inside the file — unless its
 * field type is unknown: then its size, and so where its value lies, is unknown (`valueAt` -1),
 * and only the type is kept, so that a tag the decoder needs is refused by `readIntegerTag`.
 */
export interface TagEntry {
  type: number;
  count: number;
  /** Where the value's bytes start: inside the entry when they fit, else the offset it holds. */
  valueAt: number;
}

export function checkTiffStructure(bytes: Uint8Array): TiffStructure {
  const size = bytes.byteLength;
  if (size < 8) {
    if (size >= 2 && !isByteOrderMark(bytes)) throw new XrayError('TIFF_NOT_TIFF', 'no TIFF byte-order mark (II/MM)');
    throw new XrayError('TIFF_TRUNCATED', `file is ${size} bytes, shorter than a TIFF header`);
  }
  if (!isByteOrderMark(bytes)) throw new XrayError('TIFF_NOT_TIFF', 'no TIFF byte-order mark (II/MM)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, size);
  const le = bytes[0] === 0x49;
  const magic = view.getUint16(2, le);
  let bigTiff: boolean;
  let first: number;
  if (magic === 42) {
    bigTiff = false;
    first = view.getUint32(4, le);
  } else if (magic === 43) {
    bigTiff = true;
    if (size < 16) throw new XrayError('TIFF_TRUNCATED', `BigTIFF header needs 16 bytes, file has ${size}`);
    if (view.getUint16(4, le) !== 8) throw new XrayError('TIFF_NOT_TIFF', 'BigTIFF offset size is not 8');
    first = readU64(view, 8, le);
  } else {
    throw new XrayError('TIFF_NOT_TIFF', `TIFF magic number is ${magic}, expected 42 or 43`);
  }
  if (first === 0) throw new XrayError('TIFF_BAD_TAG', 'the file has no image directory');

  const seen = new Set<number>();
  const tags = new Map<number, TagEntry>();
  let offset = first;
  while (offset !== 0) {
    if (seen.has(offset)) throw new XrayError('TIFF_IFD_LOOP', `image directory at offset ${offset} is visited twice`);
    if (seen.size >= MAX_DIRECTORIES) throw new XrayError('TIFF_IFD_LOOP', `more than ${MAX_DIRECTORIES} image directories`);
    seen.add(offset);
    offset = checkDirectory(view, offset, le, bigTiff, seen.size === 1 ? tags : null);
  }
  return { littleEndian: le, bigTiff, firstIfd: first, directories: seen.size, tags };
}

/** Integer field types and how to read one value of each (BYTE, SHORT, LONG, IFD, LONG8, IFD8, signed). */
const INTEGER_READERS: Record<number, (view: DataView, at: number, le: boolean) => number> = {
  1: (v, at) => v.getUint8(at),
  3: (v, at, le) => v.getUint16(at, le),
  4: (v, at, le) => v.getUint32(at, le),
  13: (v, at, le) => v.getUint32(at, le),
  16: (v, at, le) => readU64(v, at, le),
  18: (v, at, le) => readU64(v, at, le),
  6: (v, at) => v.getInt8(at),
  8: (v, at, le) => v.getInt16(at, le),
  9: (v, at, le) => v.getInt32(at, le),
};

/**
 * The integer values of a tag of the first directory, read in the file's byte order wherever they
 * are stored (geotiff 3.0.5 reads large out-of-line arrays as little-endian whatever the file says:
 * libtiff's big-endian strip offsets came back as 2^27). `undefined` when the tag is absent.
 */
export function readIntegerTag(bytes: Uint8Array, structure: TiffStructure, tag: number, name: string): number[] | undefined {
  const entry = structure.tags.get(tag);
  if (!entry) return undefined;
  const read = INTEGER_READERS[entry.type];
  if (!read) {
    const what = TYPE_SIZES[entry.type] === undefined ? 'unknown field type' : 'field type';
    throw new XrayError('TIFF_BAD_TAG', `${name} has ${what} ${entry.type}, expected an integer type`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = TYPE_SIZES[entry.type];
  const out = new Array<number>(entry.count);
  for (let i = 0; i < entry.count; i++) out[i] = read(view, entry.valueAt + i * size, structure.littleEndian);
  return out;
}

/** An ASCII tag's text (type 2; up to its first NUL, at most 4096 bytes), or undefined when absent or not ASCII. */
export function readAsciiTag(bytes: Uint8Array, structure: TiffStructure, tag: number): string | undefined {
  const entry = structure.tags.get(tag);
  if (!entry || entry.type !== 2) return undefined;
  const raw = bytes.subarray(entry.valueAt, entry.valueAt + Math.min(entry.count, 4096));
  const end = raw.indexOf(0);
  return new TextDecoder('latin1').decode(end >= 0 ? raw.subarray(0, end) : raw);
}

function isByteOrderMark(bytes: Uint8Array): boolean {
  return (bytes[0] === 0x49 && bytes[1] === 0x49) || (bytes[0] === 0x4d && bytes[1] === 0x4d);
}

/** Checks one directory and returns the offset of the next (0 = none). */
function checkDirectory(view: DataView, offset: number, le: boolean, big: boolean, tags: Map<number, TagEntry> | null): number {
  const isFirst = tags !== null;
  const size = view.byteLength;
  const countBytes = big ? 8 : 2;
  const entryBytes = big ? 20 : 12;
  const inlineBytes = big ? 8 : 4;
  // A region that starts past the end, or is larger than the whole file, is a bad offset or
  // count; one that starts inside and runs past the end is a truncated file.
  const outOfFile = (what: string, at: number, need: number): XrayError =>
    at >= size || need > size
      ? new XrayError('TIFF_BAD_OFFSET', `${what} at offset ${at} (${need} bytes) lies beyond the end of the ${size}-byte file`)
      : new XrayError('TIFF_TRUNCATED', `${what} at offset ${at} needs ${need} bytes, the file ends after ${size - at}`);

  if (offset + countBytes > size) throw outOfFile('image directory', offset, countBytes);
  const entries = big ? readU64(view, offset, le) : view.getUint16(offset, le);
  const dirBytes = countBytes + entries * entryBytes + (big ? 8 : 4);
  if (offset + dirBytes > size) throw outOfFile('image directory', offset, dirBytes);
  if (isFirst && entries === 0) throw new XrayError('TIFF_BAD_TAG', 'the first image directory has no entries');

  for (let i = 0; i < entries; i++) {
    const at = offset + countBytes + i * entryBytes;
    const tag = view.getUint16(at, le);
    const type = view.getUint16(at + 2, le);
    const count = big ? readU64(view, at + 4, le) : view.getUint32(at + 4, le);
    const typeSize = TYPE_SIZES[type];
    if (typeSize === undefined) {
      // TIFF 6.0 (section 2): a reader skips a field of an unexpected type (libtiff warns and reads
      // on). Kept with its type only: a tag the decoder needs with such a type is still refused.
      if (tags && !tags.has(tag)) tags.set(tag, { type, count, valueAt: -1 });
      continue;
    }
    const bytes = count * typeSize;
    let valueAt = at + 4 + (big ? 8 : 4);
    if (bytes > inlineBytes) {
      valueAt = big ? readU64(view, at + 4 + 8, le) : view.getUint32(at + 8, le);
      if (valueAt + bytes > size) throw outOfFile(`value of tag ${tag} (${count} × ${typeSize} bytes)`, valueAt, bytes);
    }
    if (tags && !tags.has(tag)) tags.set(tag, { type, count, valueAt });
  }
  const nextAt = offset + countBytes + entries * entryBytes;
  return big ? readU64(view, nextAt, le) : view.getUint32(nextAt, le);
}

function readU64(view: DataView, at: number, le: boolean): number {
  const value = view.getBigUint64(at, le);
  // Anything past 2^53 cannot be an offset into a file we could hold; map it to "beyond the file".
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}
