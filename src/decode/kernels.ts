import { WasmLzw } from './lzw-wasm.js';
import { DECODE_KERNEL } from './wasm-module.js';
import { WasmPredictor } from './predictor-wasm.js';

/**
 * The WebAssembly block kernels of one thread (LZW, predictor), each made on first use and then
 * reused capture after capture: every instance owns a WebAssembly memory, whose address-space
 * reservation the kernel maps and unmaps under the process-wide memory-map lock — one per capture
 * stalled the event loop for up to ~90 ms while the low-priority preparation thread held it (D22).
 */
export class DecodeKernels {
  private lzwKernel: WasmLzw | null = null;
  private predictorKernel: WasmPredictor | null = null;

  /** Null where the runtime lacks WebAssembly SIMD (the JavaScript decoders are used). */
  static create(): DecodeKernels | null {
    return DECODE_KERNEL ? new DecodeKernels() : null;
  }

  get lzw(): WasmLzw {
    return (this.lzwKernel ??= new WasmLzw());
  }

  get predictor(): WasmPredictor {
    return (this.predictorKernel ??= new WasmPredictor());
  }
}
