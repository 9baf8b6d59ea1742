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
  let offset = first;
  while (offset !== 0) {
    if (seen.has(offset)) throw new XrayError('TIFF_IFD_LOOP', `image directory at offset ${offset} is visited twice`);
    if (seen.size >= MAX_DIRECTORIES) throw new XrayError('TIFF_IFD_LOOP', `more than ${MAX_DIRECTORIES} image directories`);
    seen.add(offset);
    offset = checkDirectory(view, offset, le, bigTiff, seen.size === 1);
  }
  return { littleEndian: le, bigTiff, firstIfd: first, directories: seen.size };
}

function isByteOrderMark(bytes: Uint8Array): boolean {
  return (bytes[0] === 0x49 && bytes[1] === 0x49) || (bytes[0] === 0x4d && bytes[1] === 0x4d);
}

/** Checks one directory and returns the offset of the next (0 = none). */
function checkDirectory(view: DataView, offset: number, le: boolean, big: boolean, isFirst: boolean): number {
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
      if (isFirst) throw new XrayError('TIFF_BAD_TAG', `tag ${tag} has unknown field type ${type}`);
      continue; // later pages are never decoded; an odd tag there is not our concern
    }
    const bytes = count * typeSize;
    if (bytes > inlineBytes) {
      const valueOffset = big ? readU64(view, at + 4 + 8, le) : view.getUint32(at + 8, le);
      if (valueOffset + bytes > size) throw outOfFile(`value of tag ${tag} (${count} × ${typeSize} bytes)`, valueOffset, bytes);
    }
  }
  const nextAt = offset + countBytes + entries * entryBytes;
  return big ? readU64(view, nextAt, le) : view.getUint32(nextAt, le);
}

function readU64(view: DataView, at: number, le: boolean): number {
  const value = view.getBigUint64(at, le);
  // Anything past 2^53 cannot be an offset into a file we could hold; map it to "beyond the file".
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}
