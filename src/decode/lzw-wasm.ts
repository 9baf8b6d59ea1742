import { XrayError } from '../errors.js';
import { kernelModule } from '../preprocess/wasm-resize.js';

/**
 * TIFF LZW in the WebAssembly kernel (kernel.wat `lzw`): the same algorithm and the same errors
 * as `lzwDecode` in codecs.ts, ~2× faster (docs/performance.md). One instance per thread, its
 * memory holding the two 4096-entry tables, the block and the output.
 */
interface Exports {
  memory: WebAssembly.Memory;
  lzw(src: number, n: number, out: number, cap: number, pos: number, len: number): number;
}

const POS = 0;
const LEN = 4096 * 4;
const SRC = 2 * 4096 * 4;

export class WasmLzw {
  private readonly k: Exports;

  constructor() {
    this.k = new WebAssembly.Instance(kernelModule(), {}).exports as unknown as Exports;
  }

  /** Decodes one block into `dst` (at most its length); returns the bytes written. */
  decodeInto(src: Uint8Array, dst: Uint8Array): number {
    const out = SRC + ((src.length + 15) & ~15);
    const end = out + dst.length + 16;
    const mem = this.k.memory;
    if (end > mem.buffer.byteLength) mem.grow(Math.ceil((end - mem.buffer.byteLength) / 65536));
    new Uint8Array(mem.buffer, SRC, src.length).set(src);
    const n = this.k.lzw(SRC, src.length, out, dst.length, POS, LEN);
    if (n === -1) throw new XrayError('TIFF_CORRUPT_DATA', 'LZW code before any string was defined');
    if (n === -2) throw new XrayError('TIFF_CORRUPT_DATA', 'LZW code beyond the table');
    dst.set(new Uint8Array(mem.buffer, out, n));
    return n;
  }
}
