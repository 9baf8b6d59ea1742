import zlib from 'node:zlib';
import { ZSTDDecoder } from 'zstddec';
import { XrayError, oneLine } from '../errors.js';

/**
 * Zstandard blocks (TIFF compression 50000, written by libtiff and GDAL) decompressed into the
 * caller's memory, never past it. Node's own zstd (`zlib.zstdDecompressSync`, Node ≥ 22.15) where
 * the runtime has it; on Node 20 the WebAssembly build of the reference decoder that geotiff ships
 * (`zstddec`), given exactly the block's declared size as its output buffer, so a frame that would
 * grow past it fails inside the decoder. Both paths give the same bytes and the same errors (tested).
 */

type NativeZstd = (src: Uint8Array, options: { maxOutputLength: number }) => Buffer;

const native = (zlib as unknown as { zstdDecompressSync?: NativeZstd }).zstdDecompressSync;

let fallback: Promise<ZSTDDecoder> | null = null;

export class ZstdInflater {
  private constructor(private readonly wasm: ZSTDDecoder | null) {}

  /** Node's zstd when the runtime has it (`useNative: false`: the WebAssembly decoder, for tests). */
  static async create(useNative = true): Promise<ZstdInflater> {
    if (native && useNative) return new ZstdInflater(null);
    fallback ??= (async () => {
      const d = new ZSTDDecoder();
      await d.init();
      return d;
    })();
    return new ZstdInflater(await fallback);
  }

  get usesNative(): boolean {
    return this.wasm === null;
  }

  /** Decompresses `src` into `dst`, which it may fill but not exceed; returns the bytes written. */
  decompressInto(src: Uint8Array, dst: Uint8Array): number {
    if (src.length === 0) return 0;
    let out: Uint8Array;
    if (this.wasm) {
      // zstddec does not report errors: a failed ZSTD_decompress (damaged, or past the declared
      // size) returns a negative size and so an empty result.
      out = this.wasm.decode(src, Math.max(dst.length, 1));
      if (out.length === 0) throw corrupt(`damaged, or decompresses past its declared ${dst.length} bytes`);
    } else {
      try {
        out = native!(src, { maxOutputLength: Math.max(dst.length, 1) });
      } catch (err) {
        throw (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' ? pastDeclared(dst.length) : corrupt((err as Error).message);
      }
    }
    const n = Math.min(out.length, dst.length);
    dst.set(out.subarray(0, n));
    return n;
  }
}

const pastDeclared = (bytes: number): XrayError => new XrayError('TIFF_CORRUPT_DATA', `zstd block decompresses past its declared ${bytes} bytes`);
const corrupt = (message: string): XrayError => new XrayError('TIFF_CORRUPT_DATA', `zstd block: ${oneLine(message)}`);
