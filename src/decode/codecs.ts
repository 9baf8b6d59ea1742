import { BaseDecoder, addDecoder } from 'geotiff';
import { XrayError } from '../errors.js';
import { Inflater } from './inflate.js';
import { DecodeKernels } from './kernels.js';
import { WasmLzw } from './lzw-wasm.js';
import { ZstdInflater } from './zstd.js';

/**
 * Block decoders registered in geotiff's decoder registry (`addDecoder`), replacing its own for the
 * compressions a capture may use. Each decodes one strip or tile and returns the raw bytes; the
 * predictor and byte order are applied by the caller (geotiff 3.0.5 applies the predictor before
 * swapping bytes, which garbles big-endian files). Output is capped at the block's declared size,
 * so a hostile stream cannot make us allocate more than the header promised.
 */

interface BlockParameters {
  tileWidth: number;
  tileHeight: number;
}

/** Decoders accept the block as an ArrayBuffer (geotiff's contract) or as a view (ours, no copy). */
function view(buffer: ArrayBufferLike | Uint8Array): Uint8Array {
  return buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
}

function blockBytes(parameters: unknown): number {
  const p = parameters as BlockParameters;
  return p.tileWidth * p.tileHeight * 2;
}

/**
 * Our decoders also decode straight into the caller's memory (`decodeInto`, used by decodeTiff
 * for strips): no block-sized allocation and no second copy per block.
 */
export interface IntoDecoder {
  /** Decodes `block` into `dst`, filling at most all of it; returns the bytes written. */
  decodeInto(block: Uint8Array, dst: Uint8Array): number;
}

export function canDecodeInto(decoder: object): decoder is IntoDecoder {
  return typeof (decoder as Partial<IntoDecoder>).decodeInto === 'function';
}

/** geotiff's contract (`decodeBlock`: a fresh buffer of the block's size) on top of `decodeInto`. */
function decodeFresh(decoder: IntoDecoder, buffer: ArrayBufferLike | Uint8Array, size: number): ArrayBufferLike {
  const out = new Uint8Array(size);
  const n = decoder.decodeInto(view(buffer), out);
  return n === out.length ? out.buffer : out.buffer.slice(0, n);
}

export class DeflateBlockDecoder extends BaseDecoder implements IntoDecoder {
  private readonly inflater = new Inflater();

  decodeInto(block: Uint8Array, dst: Uint8Array): number {
    return this.inflater.inflateInto(block, dst);
  }

  override decodeBlock(buffer: ArrayBufferLike): ArrayBufferLike {
    return decodeFresh(this, buffer, blockBytes(this.parameters));
  }
}

export class ZstdBlockDecoder extends BaseDecoder implements IntoDecoder {
  /** Set before geotiff constructs the class (its registry awaits the import function below). */
  static inflater: ZstdInflater;

  decodeInto(block: Uint8Array, dst: Uint8Array): number {
    return ZstdBlockDecoder.inflater.decompressInto(block, dst);
  }

  override decodeBlock(buffer: ArrayBufferLike): ArrayBufferLike {
    return decodeFresh(this, buffer, blockBytes(this.parameters));
  }
}

export class PackBitsBlockDecoder extends BaseDecoder {
  override decodeBlock(buffer: ArrayBufferLike): ArrayBufferLike {
    const src = view(buffer);
    const out = new Uint8Array(blockBytes(this.parameters));
    let ip = 0;
    let op = 0;
    while (ip < src.length && op < out.length) {
      const n = (src[ip++] << 24) >> 24;
      if (n >= 0) {
        const end = ip + n + 1;
        if (end > src.length) throw new XrayError('TIFF_CORRUPT_DATA', 'PackBits literal run past the end of its block');
        const take = Math.min(n + 1, out.length - op);
        out.set(src.subarray(ip, ip + take), op);
        op += take;
        ip = end;
      } else if (n !== -128) {
        if (ip >= src.length) throw new XrayError('TIFF_CORRUPT_DATA', 'PackBits repeat run past the end of its block');
        const take = Math.min(1 - n, out.length - op);
        out.fill(src[ip++], op, op + take);
        op += take;
      }
    }
    return op === out.length ? out.buffer : out.buffer.slice(0, op);
  }
}

const LZW_CLEAR = 256;
const LZW_EOI = 257;

/** TIFF LZW (MSB-first codes, 9–12 bits, "early change"), decoding into a capped buffer. */
export class LzwBlockDecoder extends BaseDecoder implements IntoDecoder {
  private wasm: WasmLzw | null | undefined;

  /** Decodes with this thread's kernel (see DecodeKernels) instead of making one. */
  use(kernel: WasmLzw): void {
    this.wasm = kernel;
  }

  decodeInto(block: Uint8Array, dst: Uint8Array): number {
    // TIFF 6.0's decoder starts from a Clear code, and libtiff (4.5) refuses a strip that does not
    // ("Using code not yet in table"); so do we, rather than decode what the writer's own library
    // could not read back. This also refuses pre-1995 bit-reversed LZW, which starts with 0x00.
    // One of the two differences from libtiff the fuzz test found (D30).
    if (block.length < 2 || block[0] !== 0x80 || (block[1] & 0x80) !== 0) {
      throw new XrayError('TIFF_CORRUPT_DATA', 'LZW block does not start with a Clear code (TIFF 6.0 requires it; libtiff refuses such a block too)');
    }
    if (this.wasm === undefined) this.wasm = DecodeKernels.create()?.lzw ?? null;
    // the kernel counts the block's bits in an i32: a longer block (~256 MiB) goes the JavaScript way
    return this.wasm && block.length <= WasmLzw.MAX_BLOCK ? this.wasm.decodeInto(block, dst) : lzwDecode(block, dst);
  }

  override decodeBlock(buffer: ArrayBufferLike): ArrayBufferLike {
    return decodeFresh(this, buffer, blockBytes(this.parameters));
  }
}

export function lzwDecode(src: Uint8Array, out: Uint8Array): number {
  // Every table entry is a string that already occurs in the output: entry k = string(old) +
  // first byte of the next string, which was written at `pos[old]`, one byte longer. Emitting a
  // code is then a short copy from earlier output, not a walk along a prefix chain.
  const pos = new Int32Array(4096);
  const len = new Uint16Array(4096);
  let next = 258;
  let width = 9;
  let old = -1;
  let op = 0;
  let bitBuf = 0;
  let bitCount = 0;
  let ip = 0;
  const capacity = out.length;
  while (op < capacity) {
    while (bitCount < width) {
      if (ip >= src.length) return op; // stream ended without EOI: keep what we have
      bitBuf = ((bitBuf << 8) | src[ip++]) >>> 0;
      bitCount += 8;
    }
    bitCount -= width;
    const code = (bitBuf >>> bitCount) & ((1 << width) - 1);
    bitBuf &= (1 << bitCount) - 1;
    if (code === LZW_CLEAR) {
      next = 258;
      width = 9;
      old = -1;
      continue;
    }
    if (code === LZW_EOI) break;
    // A full table (4096 entries) must be followed by a Clear code: TIFF 6.0's encoder clears
    // before it fills, and libtiff means to refuse what comes after (it reuses table slots).
    if (next >= 4096) throw new XrayError('TIFF_CORRUPT_DATA', `LZW code ${code} after the table is full (no Clear code)`);
    if (code < 256) {
      if (old !== -1) {
        pos[next] = pos[old];
        len[next] = len[old] + 1;
        next++;
      }
      pos[code] = op; // a literal's latest occurrence (used when it becomes `old`)
      len[code] = 1;
      out[op++] = code;
    } else {
      if (old === -1) throw new XrayError('TIFF_CORRUPT_DATA', `LZW code ${code} before any string was defined`);
      if (code > next) throw new XrayError('TIFF_CORRUPT_DATA', `LZW code ${code} is beyond the table (next ${next})`);
      pos[next] = pos[old];
      len[next] = len[old] + 1;
      next++;
      // For code === next-1 just added (the KwKwK case) the copy overlaps its own output by one
      // byte, which a forward byte copy handles.
      const from = pos[code];
      const n = Math.min(len[code], capacity - op);
      pos[code] = op;
      for (let i = 0; i < n; i++) out[op + i] = out[from + i];
      op += n;
    }
    if (next === (1 << width) - 1 && width < 12) width++;
    old = code;
  }
  return op;
}

let registered = false;

/** Registers our block decoders in geotiff's registry; safe to call more than once. */
export function registerCodecs(): void {
  if (registered) return;
  registered = true;
  addDecoder([8, 32946], () => Promise.resolve(DeflateBlockDecoder as never), undefined, false);
  addDecoder(5, () => Promise.resolve(LzwBlockDecoder as never), undefined, false);
  addDecoder(32773, () => Promise.resolve(PackBitsBlockDecoder as never), undefined, false);
  addDecoder(50000, async () => {
    ZstdBlockDecoder.inflater ??= await ZstdInflater.create();
    return ZstdBlockDecoder as never;
  }, undefined, false);
}
