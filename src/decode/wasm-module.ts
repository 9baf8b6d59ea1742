import { compileKernel } from '../wasm.js';
import { DECODE_WASM_BASE64 } from './kernel-wasm.js';

/** The decoders' module (kernel.wat), compiled when first imported in a thread; null without WebAssembly SIMD. */
export const DECODE_KERNEL = compileKernel(DECODE_WASM_BASE64);
