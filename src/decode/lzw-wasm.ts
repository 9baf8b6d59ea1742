import { XrayError } from '../errors.js';
import { kernelInstance, reserve } from '../preprocess/wasm-resize.js';

/**
 * TIFF LZW in the WebAssembly kernel (kernel.wat `lzw`): the same algorithm and the same errors
 * as `lzwDecode` in codecs.ts, ~3.5× faster (docs/performance.md). One instance per thread, its
 * memory holding the string table, the block and the output.
 */
interface Exports {
  memory: WebAssembly.Memory;
  lzw(src: number, n: number, out: number, cap: number, tab: number): number;
}

/** The string table (4097 entries of i32 address, i32 length, the last a spare) and the 256 literal bytes. */
const TAB = 0;
const SRC = 4096 * 8 + 512;

export class WasmLzw {
  private readonly k: Exports;

  constructor() {
    this.k = kernelInstance<Exports>();
  }

  /** Decodes one block into `dst` (at most its length); returns the bytes written. */
  decodeInto(src: Uint8Array, dst: Uint8Array): number {
    const out = SRC + ((src.length + 15) & ~15);
    const mem = this.k.memory;
    reserve(mem, out + dst.length + 4096 + 16); // the kernel may write up to 4096 + 7 bytes past the end
    new Uint8Array(mem.buffer, SRC, src.length).set(src);
    const n = this.k.lzw(SRC, src.length, out, dst.length, TAB);
    if (n === -1) throw new XrayError('TIFF_CORRUPT_DATA', 'LZW code before any string was defined');
    if (n === -2) throw new XrayError('TIFF_CORRUPT_DATA', 'LZW code beyond the table');
    dst.set(new Uint8Array(mem.buffer, out, n));
    return n;
  }
}
