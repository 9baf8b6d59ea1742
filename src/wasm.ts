/**
 * What the two WebAssembly kernels share (prepare/resize.wat, decode/kernel.wat): compiling the
 * committed bytes, an instance per thread, and growing an instance's memory.
 */

/** The compiled module, or null where the runtime lacks WebAssembly SIMD (the JavaScript paths are used then). */
export function compileKernel(base64: string): WebAssembly.Module | null {
  try {
    return new WebAssembly.Module(Buffer.from(base64, 'base64'));
  } catch {
    return null;
  }
}

/** A fresh instance of `module` (its own memory), typed as the caller uses it. */
export function instantiate<E>(module: WebAssembly.Module): E {
  return new WebAssembly.Instance(module, {}).exports as unknown as E;
}

/** Grows a kernel's memory to at least `end` bytes (contents kept; views on the old buffer go stale). */
export function reserve(memory: WebAssembly.Memory, end: number): void {
  if (end > memory.buffer.byteLength) memory.grow(Math.ceil((end - memory.buffer.byteLength) / 65536));
}
