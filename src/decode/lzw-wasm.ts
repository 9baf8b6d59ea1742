import { XrayError } from '../errors.js';
import { instantiate, reserve } from '../wasm.js';
import { DECODE_KERNEL } from './wasm-module.js';

/**
 * TIFF LZW in the WebAssembly kernel (decode/kernel.wat `lzw`): the same algorithm and the same errors
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
    if (!DECODE_KERNEL) throw new Error('WebAssembly SIMD is not available: use the JavaScript decoder');
    this.k = instantiate<Exports>(DECODE_KERNEL);
  }

  /** How far past the end of its output the kernel may write (an entry of up to 4096 bytes, 8-byte stores). */
  static readonly SLACK = 4096 + 16;

  /**
   * Where a block of `n` bytes and its output of `cap` bytes lie in the kernel's memory, which is
   * grown to `end + extra`: the block at `at` (the kernel reads up to 15 bytes past it), the
   * output at `out`, and `end` = the end of the output's slack, past which nothing is written.
   */
  layout(n: number, cap: number, extra = 0): { at: number; out: number; end: number; memory: WebAssembly.Memory } {
    const size = (n + 15) & ~15;
    const at = REV + size;
    const out = at + size + 16;
    const end = out + cap + WasmLzw.SLACK;
    reserve(this.k.memory, end + extra);
    return { at, out, end, memory: this.k.memory };
  }

  /** Decodes one block into `dst` (at most its length); returns the bytes written. */
  decodeInto(src: Uint8Array, dst: Uint8Array): number {
    if (src.length > WasmLzw.MAX_BLOCK) throw new RangeError(`LZW block of ${src.length} bytes: the kernel takes at most ${WasmLzw.MAX_BLOCK}`);
    const { at, out, memory: mem } = this.layout(src.length, dst.length);
    new Uint8Array(mem.buffer, at, src.length).set(src);
    const n = this.k.lzw(at, src.length, out, dst.length, REV);
    if (n === -1) throw new XrayError('TIFF_CORRUPT_DATA', 'LZW code before any string was defined');
    if (n === -2) throw new XrayError('TIFF_CORRUPT_DATA', 'LZW code beyond the table');
    if (n === -3) throw new XrayError('TIFF_CORRUPT_DATA', 'LZW code after the table is full (no Clear code)');
    dst.set(new Uint8Array(mem.buffer, out, n));
    return n;
  }
}
