import { getDecoder } from 'geotiff';
import { XrayError, toXrayError } from '../errors.js';
import { canDecodeInto, LzwBlockDecoder, registerCodecs } from './codecs.js';
import { checkTiffStructure, readAsciiTag, readIntegerTag, type TiffStructure } from './tiff-structure.js';
import { DecodeKernels } from './kernels.js';
import { BitReverser, reversesBits } from './fill-order.js';
import type { WasmPredictor } from './predictor-wasm.js';

/** A decoded capture: 16-bit gray values, row-major; MinIsWhite files are already inverted. */
export interface Gray16Image {
  width: number;
  height: number;
  data: Uint16Array;
  /** The first page's ImageDescription (270) and DocumentName (269), where the writer set them. */
  text?: { imageDescription?: string; documentName?: string };
}

export interface DecodeOptions {
  /** Refuse images with more pixels than this (default 50 megapixels). */
  maxPixels?: number;
}

/**
 * Where big buffers come from: a station decoding capture after capture reuses two buffers
 * instead of allocating ~10 MB per capture, which made V8 run a full GC on every capture
 * (external memory pressure; seen with --trace-gc). Default: fresh allocations.
 */
export interface Scratch {
  bytes(size: number): Buffer;
  pixels(count: number): Uint16Array;
  /** This thread's WebAssembly block kernels, reused (null: none; absent: made per decode). */
  kernels?: DecodeKernels | null;
}

export const DEFAULT_MAX_PIXELS = 50_000_000;

const SUPPORTED_COMPRESSION = new Set([1, 5, 8, 32946, 32773, 50000]);
const COMPRESSION_NAMES: Record<number, string> = {
  2: 'CCITT RLE', 3: 'CCITT G3', 4: 'CCITT G4', 6: 'old JPEG', 7: 'JPEG', 34887: 'LERC', 34925: 'LZMA',
  50001: 'WebP', 34712: 'JPEG 2000',
};

/**
 * Decodes the first page of a single-sample 16-bit unsigned TIFF. The directory is read by
 * tiff-structure.ts in the file's byte order; geotiff's registry provides the block decoders
 * (ours, registered with addDecoder); the tag checks, block bounds, predictor and byte order are
 * done here, since geotiff 3.0.5 accepts many malformed files silently; FillOrder 2 (bit-reversed
 * bytes) is undone on each stored block before it is decompressed, as libtiff does.
 */
export async function decodeTiff(bytes: Uint8Array, options: DecodeOptions = {}, scratch?: Scratch): Promise<Gray16Image> {
  const structure = checkTiffStructure(bytes);
  registerCodecs();
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const dir = readDirectory(bytes, structure);
  const tag = (name: string): number | undefined => scalar(dir.get(name));
  const width = tag('ImageWidth');
  const height = tag('ImageLength');
  if (width === undefined || height === undefined) throw new XrayError('TIFF_BAD_TAG', 'ImageWidth or ImageLength is missing');
  if (width === 0 || height === 0) throw new XrayError('TIFF_EMPTY_IMAGE', `image is ${width}×${height}`);
  if (width * height > maxPixels) {
    throw new XrayError('TIFF_TOO_LARGE', `image is ${width}×${height} = ${width * height} pixels, limit ${maxPixels}`);
  }
  const samples = tag('SamplesPerPixel') ?? 1;
  if (samples !== 1) throw new XrayError('TIFF_UNSUPPORTED_SAMPLES', `${samples} samples per pixel, expected 1 (grayscale)`);
  const bits = tag('BitsPerSample') ?? 1;
  if (bits !== 16) throw new XrayError('TIFF_UNSUPPORTED_BITS', `${bits} bits per sample, expected 16`);
  const format = tag('SampleFormat') ?? 1;
  if (format !== 1) {
    const name = format === 2 ? 'signed integer' : format === 3 ? 'floating point' : `format ${format}`;
    throw new XrayError('TIFF_UNSUPPORTED_SAMPLE_FORMAT', `samples are ${name}, expected unsigned integer`);
  }
  const photometric = tag('PhotometricInterpretation') ?? 1;
  if (photometric !== 0 && photometric !== 1) {
    throw new XrayError('TIFF_UNSUPPORTED_PHOTOMETRIC', `photometric interpretation ${photometric}, expected 0 or 1`);
  }
  const compression = tag('Compression') ?? 1;
  if (!SUPPORTED_COMPRESSION.has(compression)) {
    const name = COMPRESSION_NAMES[compression] ?? 'unknown';
    throw new XrayError('TIFF_UNSUPPORTED_COMPRESSION', `compression ${compression} (${name}) is not supported`);
  }
  const reverser = reversesBits(tag('FillOrder')) ? new BitReverser() : null;
  const predictor = tag('Predictor') ?? 1;
  if (predictor !== 1 && predictor !== 2) {
    throw new XrayError('TIFF_UNSUPPORTED_PREDICTOR', `predictor ${predictor} is not supported for integer samples`);
  }

  const layout = blockLayout(dir, width, height);
  const blocks = layout.offsets.length;
  const counts = layout.byteCounts;
  if (counts.length !== blocks) {
    throw new XrayError('TIFF_BAD_TAG', `${blocks} block offsets but ${counts.length} byte counts`);
  }
  const expectedBlocks = layout.across * Math.ceil(height / layout.blockHeight);
  if (blocks < expectedBlocks) {
    throw new XrayError('TIFF_BAD_TAG', `${blocks} ${layout.kind}s, the image needs ${expectedBlocks}`);
  }
  for (let i = 0; i < expectedBlocks; i++) {
    const start = layout.offsets[i];
    const end = start + counts[i];
    if (start >= bytes.byteLength && counts[i] > 0) {
      throw new XrayError('TIFF_BAD_OFFSET', `${layout.kind} ${i} starts at ${start}, beyond the ${bytes.byteLength}-byte file`);
    }
    if (end > bytes.byteLength) {
      throw new XrayError('TIFF_TRUNCATED', `${layout.kind} ${i} ends at ${end}, the file has ${bytes.byteLength} bytes`);
    }
  }

  const decoder = await getDecoder(compression, {
    tileWidth: layout.blockWidth, tileHeight: layout.blockHeight, predictor: 1, bitsPerSample: 16, planarConfiguration: 1,
  } as never);
  const out = scratch ? scratch.pixels(width * height) : new Uint16Array(width * height);
  const outBytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  const into = canDecodeInto(decoder) ? decoder : null;
  /** Decodes one block into the first bytes of `dst`; returns the bytes written. */
  const decodeBlock = async (raw: Uint8Array, dst: Uint8Array): Promise<number> => {
    if (compression === 1) {
      const n = Math.min(raw.length, dst.length);
      dst.set(raw.subarray(0, n));
      return n;
    }
    if (into) return into.decodeInto(raw, dst);
    const decoded = toBytes(await decoder.decodeBlock(raw as unknown as ArrayBuffer));
    const n = Math.min(decoded.length, dst.length);
    dst.set(decoded.subarray(0, n));
    return n;
  };
  const le = structure.littleEndian;
  const kernels = scratch?.kernels !== undefined ? scratch.kernels : DecodeKernels.create();
  if (kernels && decoder instanceof LzwBlockDecoder) decoder.use(kernels.lzw);
  const unpredict = predictor !== 2 ? null : kernels ? predictorUndo(kernels.predictor) : undoHorizontalPredictor;
  const blockSize = layout.blockWidth * layout.blockHeight * 2;
  let spare: Uint8Array | null = null;
  for (let i = 0; i < expectedBlocks; i++) {
    const bx = (i % layout.across) * layout.blockWidth;
    const by = Math.floor(i / layout.across) * layout.blockHeight;
    const rows = Math.min(layout.blockHeight, height - by);
    const cols = Math.min(layout.blockWidth, width - bx);
    // Tiles are always full-size; the last strip holds only the rows that remain.
    const neededRows = layout.kind === 'tile' ? layout.blockHeight : rows;
    const needed = layout.blockWidth * neededRows * 2;
    // every block was checked against the file's length above
    const stored = bytes.subarray(layout.offsets[i], layout.offsets[i] + counts[i]);
    const raw = reverser ? reverser.reverse(stored) : stored;
    // Full strips decode straight into place; tiles and a short last strip (which may hold a
    // whole strip's data) go through a block-sized buffer.
    const direct = layout.kind === 'strip' && rows === layout.blockHeight;
    const dst = direct ? outBytes.subarray(by * width * 2, (by + rows) * width * 2) : (spare ??= new Uint8Array(blockSize));
    let got: number;
    try {
      got = await decodeBlock(raw, dst);
    } catch (err) {
      throw toXrayError(err, 'TIFF_CORRUPT_DATA');
    }
    if (got < needed) {
      const code = compression === 1 ? 'TIFF_TRUNCATED' : 'TIFF_CORRUPT_DATA';
      throw new XrayError(code, `${layout.kind} ${i} decodes to ${got} bytes, expected ${needed}`);
    }
    if (layout.kind === 'strip') {
      // Full-width rows: byte order and predictor in place.
      const at = by * width;
      if (!direct) outBytes.set(dst.subarray(0, rows * width * 2), at * 2);
      const strip = out.subarray(at, at + rows * width);
      if (le !== NATIVE_LE) swapBytes(strip);
      if (unpredict) unpredict(strip, width, rows);
      continue;
    }
    const block = toNativeU16(dst, needed / 2, le);
    if (unpredict) unpredict(block, layout.blockWidth, neededRows);
    for (let r = 0; r < rows; r++) {
      const src = r * layout.blockWidth;
      out.set(block.subarray(src, src + cols), (by + r) * width + bx);
    }
  }
  if (photometric === 0) {
    for (let i = 0; i < out.length; i++) out[i] = 65535 - out[i];
  }
  const imageDescription = readAsciiTag(bytes, structure, 270);
  const documentName = readAsciiTag(bytes, structure, 269);
  return { width, height, data: out, text: { ...(imageDescription ? { imageDescription } : {}), ...(documentName ? { documentName } : {}) } };
}

type Directory = Map<string, number[]>;

/** The tags decoding needs, by name, with their numbers (TIFF 6.0 and its Technical Notes). */
const TAGS: Record<string, number> = {
  ImageWidth: 256, ImageLength: 257, BitsPerSample: 258, Compression: 259, PhotometricInterpretation: 262, FillOrder: 266,
  StripOffsets: 273, SamplesPerPixel: 277, RowsPerStrip: 278, StripByteCounts: 279, Predictor: 317,
  TileWidth: 322, TileLength: 323, TileOffsets: 324, TileByteCounts: 325, SampleFormat: 339,
};

/** The first directory's tags, read by our own parser in the file's byte order (BigTIFF too). */
function readDirectory(bytes: Uint8Array, structure: TiffStructure): Directory {
  const dir: Directory = new Map();
  for (const [name, tag] of Object.entries(TAGS)) {
    const values = readIntegerTag(bytes, structure, tag, name);
    if (values !== undefined) dir.set(name, values);
  }
  return dir;
}

function scalar(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (ArrayBuffer.isView(value) || Array.isArray(value)) {
    const arr = value as ArrayLike<number | bigint>;
    if (arr.length === 0) return undefined;
    const first = Number(arr[0]);
    for (let i = 1; i < arr.length; i++) {
      if (Number(arr[i]) !== first) {
        throw new XrayError('TIFF_UNSUPPORTED_BITS', `samples have different bit depths (${Array.from(arr).join(',')})`);
      }
    }
    return first;
  }
  throw new XrayError('TIFF_BAD_TAG', `unexpected tag value ${String(value)}`);
}

function numbers(value: unknown): number[] {
  if (value === undefined) return [];
  if (typeof value === 'number' || typeof value === 'bigint') return [Number(value)];
  if (ArrayBuffer.isView(value) || Array.isArray(value)) return Array.from(value as ArrayLike<number | bigint>, Number);
  throw new XrayError('TIFF_BAD_TAG', `unexpected tag value ${String(value)}`);
}

interface BlockLayout {
  kind: 'strip' | 'tile';
  blockWidth: number;
  blockHeight: number;
  across: number;
  offsets: number[];
  byteCounts: number[];
}

function blockLayout(dir: Directory, width: number, height: number): BlockLayout {
  if (dir.has('TileOffsets')) {
    const tw = scalar(dir.get('TileWidth'));
    const th = scalar(dir.get('TileLength'));
    if (!tw || !th) throw new XrayError('TIFF_BAD_TAG', 'tiled image without TileWidth/TileLength');
    if (tw * th > 64 * 1024 * 1024) throw new XrayError('TIFF_BAD_TAG', `tile ${tw}×${th} is implausibly large`);
    return {
      kind: 'tile', blockWidth: tw, blockHeight: th, across: Math.ceil(width / tw),
      offsets: numbers(dir.get('TileOffsets')), byteCounts: numbers(dir.get('TileByteCounts')),
    };
  }
  if (!dir.has('StripOffsets')) throw new XrayError('TIFF_BAD_TAG', 'neither StripOffsets nor TileOffsets is present');
  if (!dir.has('StripByteCounts')) throw new XrayError('TIFF_BAD_TAG', 'StripByteCounts is missing');
  const rowsPerStrip = Math.min(scalar(dir.get('RowsPerStrip')) ?? height, height);
  if (rowsPerStrip === 0) throw new XrayError('TIFF_BAD_TAG', 'RowsPerStrip is 0');
  return {
    kind: 'strip', blockWidth: width, blockHeight: rowsPerStrip, across: 1,
    offsets: numbers(dir.get('StripOffsets')), byteCounts: numbers(dir.get('StripByteCounts')),
  };
}

function toBytes(b: ArrayBufferLike | Uint8Array): Uint8Array {
  return b instanceof Uint8Array ? b : new Uint8Array(b);
}

const NATIVE_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The first `count` samples of a decoded block as native-order uint16 (a copy we may modify). */
function toNativeU16(bytes: Uint8Array, count: number, fileLittleEndian: boolean): Uint16Array {
  const out = new Uint16Array(count);
  new Uint8Array(out.buffer).set(bytes.subarray(0, count * 2));
  if (fileLittleEndian !== NATIVE_LE) {
    for (let i = 0; i < count; i++) {
      const v = out[i];
      out[i] = ((v & 0xff) << 8) | (v >>> 8);
    }
  }
  return out;
}

function swapBytes(a: Uint16Array): void {
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    a[i] = ((v & 0xff) << 8) | (v >>> 8);
  }
}

const predictorUndo = (p: WasmPredictor) => (block: Uint16Array, width: number, rows: number): void => p.undo(block, width, rows);

/** Predictor 2 undone in JavaScript (where WebAssembly is missing; the reference for its test). */
export function undoHorizontalPredictor(block: Uint16Array, width: number, rows: number): void {
  for (let r = 0; r < rows; r++) {
    let acc = block[r * width];
    for (let i = r * width + 1, end = (r + 1) * width; i < end; i++) {
      acc = (acc + block[i]) & 0xffff;
      block[i] = acc;
    }
  }
}
