import { inflateSync } from 'node:zlib';
import { BaseDecoder, addDecoder } from 'geotiff';
import { XrayError, oneLine } from '../errors.js';

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

function blockBytes(parameters: unknown): number {
  const p = parameters as BlockParameters;
  return p.tileWidth * p.tileHeight * 2;
}

export class DeflateBlockDecoder extends BaseDecoder {
  override decodeBlock(buffer: ArrayBufferLike): ArrayBufferLike {
    const expected = blockBytes(this.parameters);
    let out: Buffer;
    try {
      out = inflateSync(new Uint8Array(buffer), { maxOutputLength: Math.max(expected, 1) });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ERR_BUFFER_TOO_LARGE') {
        throw new XrayError('TIFF_CORRUPT_DATA', `deflate block inflates past its declared ${expected} bytes`);
      }
      throw new XrayError('TIFF_CORRUPT_DATA', `deflate block: ${oneLine((err as Error).message)}`);
    }
    return out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength);
  }
}

export class PackBitsBlockDecoder extends BaseDecoder {
  override decodeBlock(buffer: ArrayBufferLike): ArrayBufferLike {
    const src = new Uint8Array(buffer);
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
    return out.buffer.slice(0, op);
  }
}

const LZW_CLEAR = 256;
const LZW_EOI = 257;

/** TIFF LZW (MSB-first codes, 9–12 bits, "early change"), decoding into a capped buffer. */
export class LzwBlockDecoder extends BaseDecoder {
  override decodeBlock(buffer: ArrayBufferLike): ArrayBufferLike {
    const out = new Uint8Array(blockBytes(this.parameters));
    const written = lzwDecode(new Uint8Array(buffer), out);
    return out.buffer.slice(0, written);
  }
}

export function lzwDecode(src: Uint8Array, out: Uint8Array): number {
  const prefix = new Uint16Array(4096);
  const suffix = new Uint8Array(4096);
  const first = new Uint8Array(4096);
  const length = new Uint16Array(4096);
  for (let i = 0; i < 256; i++) {
    suffix[i] = i;
    first[i] = i;
    length[i] = 1;
  }
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
    if (old === -1) {
      if (code > 255) throw new XrayError('TIFF_CORRUPT_DATA', `LZW code ${code} before any string was defined`);
      out[op++] = code;
      old = code;
      continue;
    }
    let emit: number;
    let firstByte: number;
    if (code < next) {
      emit = code;
      firstByte = first[code];
    } else if (code === next) {
      emit = -1;
      firstByte = first[old];
    } else {
      throw new XrayError('TIFF_CORRUPT_DATA', `LZW code ${code} is beyond the table (next ${next})`);
    }
    if (next < 4096) {
      prefix[next] = old;
      suffix[next] = firstByte;
      first[next] = first[old];
      length[next] = length[old] + 1;
      if (emit === -1) emit = next;
      next++;
      if (next === (1 << width) - 1 && width < 12) width++;
    } else if (emit === -1) {
      throw new XrayError('TIFF_CORRUPT_DATA', 'LZW table overflow without a clear code');
    }
    // Write the string for `emit` backwards from its last byte.
    const len = length[emit];
    let end = op + len;
    let c = emit;
    if (end > capacity) {
      // Skip the bytes that do not fit, then write the rest.
      for (let skip = end - capacity; skip > 0; skip--) c = prefix[c];
      end = capacity;
    }
    for (let p = end - 1; p >= op; p--) {
      out[p] = suffix[c];
      c = prefix[c];
    }
    op = end;
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
}
