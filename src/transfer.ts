/** Whether a typed array lives in shared memory (posted to another thread, it is shared, not moved). */
export function isShared(view: ArrayBufferView): boolean {
  return view.buffer instanceof SharedArrayBuffer;
}

/** The transfer list for a message carrying `views`: the buffers of those not in shared memory. */
export function transferList(...views: ArrayBufferView[]): ArrayBuffer[] {
  return views.filter((v) => !isShared(v)).map((v) => v.buffer as ArrayBuffer);
}
