import { XrayError } from '../errors.js';
import { kernelInstance, reserve } from '../preprocess/wasm-resize.js';

/**
 * TIFF LZW in the WebAssembly kernel (kernel.wat `lzw`): the same algorithm and the same errors
 * as `lzwDecode` in codecs.ts, ~3.5× faster (docs/performance.md). One instance per thread, its
 * memory holding the string table, the block and the output.
 */
interface Exports {
  memory: WebAssembly.Memory;
  lzw(src: number, n: number, out: number, cap: number, rev: number): number;
}

/** The kernel's string table is at 0 (4097 i64 entries); then the reversed block, with 16 bytes of room before it. */
const REV = 4097 * 8 + 24;

export class WasmLzw {
  /** The longest block the kernel takes: it counts the block's bits in an i32 (callers use lzwDecode beyond). */
  static readonly MAX_BLOCK = 2 ** 28 - 64;
  private readonly k: Exports;

  constructor() {
    this.k = kernelInstance<Exports>();
  }

  /** Decodes one block into `dst` (at most its length); returns the bytes written. */
  decodeInto(src: Uint8Array, dst: Uint8Array): number {
    if (src.length > WasmLzw.MAX_BLOCK) throw new RangeError(`LZW block of ${src.length} bytes: the kernel takes at most ${WasmLzw.MAX_BLOCK}`);
    const size = (src.length + 15) & ~15;
    const at = REV + size; // the block; the kernel reads up to 15 bytes past it
    const out = at + size + 16;
    const mem = this.k.memory;
    reserve(mem, out + dst.length + 4096 + 16); // the kernel may write up to 4096 + 7 bytes past the end
    new Uint8Array(mem.buffer, at, src.length).set(src);
    const n = this.k.lzw(at, src.length, out, dst.length, REV);
    if (n === -1) throw new XrayError('TIFF_CORRUPT_DATA', 'LZW code before any string was defined');
    if (n === -2) throw new XrayError('TIFF_CORRUPT_DATA', 'LZW code beyond the table');
    dst.set(new Uint8Array(mem.buffer, out, n));
    return n;
  }
}
