import zlib from 'node:zlib';
import { XrayError, oneLine } from '../errors.js';

/**
 * Inflates zlib streams (TIFF deflate blocks) straight into the caller's memory, reusing one zlib
 * stream for every block of every capture.
 *
 * `zlib.inflateSync` creates, initialises and closes a stream per call (~60 µs here, ×130 strips
 * of a capture) and returns a fresh Buffer we then copy into place: 16–19 ms per capture against
 * 12 ms this way (docs/performance.md, D21). Node has no public API to reset and reuse a
 * synchronous stream, so this drives the stream's native handle (`_handle.writeSync`, the call
 * `inflateSync` itself makes) on the Node versions it was tested on (`TESTED_NODE_MAJORS`) where
 * the handle is there; elsewhere it falls back to `inflateSync` with the same results and errors
 * (tested both ways).
 */

interface NativeHandle {
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
  reset(): void;
  onerror: (message: string, errno: number) => void;
}

/**
 * Node majors whose zlib handle this was tested on. A changed `writeSync` contract would not throw
 * but abort the process (the binding CHECKs its arguments), so other versions use `inflateSync`
 * until tested (test/inflate.test.ts) and added here.
 */
export const TESTED_NODE_MAJORS = [20, 22, 24];

/** Room for the check that a block does not go on past the bytes it may fill. */
const PROBE = new Uint8Array(16);

export class Inflater {
  private stream: zlib.Inflate | null = null;
  private handle: NativeHandle | null = null;
  private state: Uint32Array | null = null;
  private error: string | null = null;

  /** `reuse: false` forces the `inflateSync` path (tests; Node versions without the handle). */
  constructor(private readonly reuse = true) {}

  /** True while the reused native stream is in use (false: `inflateSync` per block). */
  get reusing(): boolean {
    return this.open() !== null;
  }

  /**
   * Inflates `src` into `dst`, which it may fill but not exceed; returns the bytes written.
   * Corrupt data, a stream that ends early and one that goes on past `dst` are TIFF_CORRUPT_DATA.
   */
  inflateInto(src: Uint8Array, dst: Uint8Array): number {
    const handle = this.open();
    if (!handle) return this.viaInflateSync(src, dst);
    const state = this.state!;
    try {
      this.write(handle, src, 0, src.length, dst);
      const written = dst.length - state[0];
      if (state[0] === 0) {
        // dst is full: the stream must end here (what is left is at most its trailer).
        this.write(handle, src, src.length - state[1], state[1], PROBE);
        if (state[0] < PROBE.length) throw pastDeclared(dst.length);
      }
      handle.reset();
      return written;
    } catch (err) {
      this.close(); // a fresh stream for the next block, whatever state this one is in
      throw err;
    }
  }

  close(): void {
    this.stream?.close();
    this.stream = null;
    this.handle = null;
    this.state = null;
  }

  private write(handle: NativeHandle, src: Uint8Array, at: number, n: number, dst: Uint8Array): void {
    this.error = null;
    handle.writeSync(zlib.constants.Z_FINISH, src, at, n, dst, 0, dst.length);
    if (this.error !== null) throw corrupt(this.error);
  }

  private open(): NativeHandle | null {
    if (this.handle || !this.reuse) return this.handle;
    if (!TESTED_NODE_MAJORS.includes(Number(process.versions.node.split('.')[0]))) return null;
    const stream = zlib.createInflate() as zlib.Inflate & { _handle?: NativeHandle; _writeState?: Uint32Array };
    const handle = stream._handle;
    const state = stream._writeState;
    if (!handle || typeof handle.writeSync !== 'function' || typeof handle.reset !== 'function' || !(state instanceof Uint32Array) || state.length !== 2) {
      stream.close();
      return null;
    }
    // Errors arrive through this callback, synchronously, during writeSync.
    handle.onerror = (message) => {
      this.error = message;
    };
    this.stream = stream;
    this.handle = handle;
    this.state = state;
    return handle;
  }

  private viaInflateSync(src: Uint8Array, dst: Uint8Array): number {
    let out: Buffer;
    try {
      out = zlib.inflateSync(src, { maxOutputLength: Math.max(dst.length, 1) });
    } catch (err) {
      throw (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' ? pastDeclared(dst.length) : corrupt((err as Error).message);
    }
    dst.set(out.subarray(0, Math.min(out.length, dst.length)));
    return Math.min(out.length, dst.length);
  }
}

/** The two ways a block fails, worded the same on both paths. */
const pastDeclared = (bytes: number): XrayError => new XrayError('TIFF_CORRUPT_DATA', `deflate block inflates past its declared ${bytes} bytes`);
const corrupt = (zlibMessage: string): XrayError => new XrayError('TIFF_CORRUPT_DATA', `deflate block: ${oneLine(zlibMessage)}`);
