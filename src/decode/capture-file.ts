import { closeSync, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { fsPath } from '../capture/names.js';
import { XrayError, toXrayError } from '../errors.js';
import { decodeTiff, DEFAULT_MAX_PIXELS, type DecodeOptions, type Gray16Image, type Scratch } from './tiff.js';

/** A capture file's bytes and what identifies it on disk. */
export interface CaptureBytes {
  bytes: Buffer;
  size: number;
  mtimeMs: number;
}

/**
 * Reads a capture, refusing non-files and files larger than the pixel limit could need. The I/O
 * is synchronous: its callers run off the daemon's event loop (the preparation worker, CLI tools),
 * and five trips through the thread pool (stat, open, fstat, read, close) cost more than the read
 * of a 4.7 MB capture from the page cache (~1 ms).
 */
export async function readCaptureFile(path: string, options: DecodeOptions = {}, scratch?: Scratch): Promise<CaptureBytes> {
  let fd: number | null = null;
  try {
    // Even uncompressed, a file within the pixel limit is no larger than this: refuse before reading.
    const limit = (options.maxPixels ?? DEFAULT_MAX_PIXELS) * 2 + 64 * 1024 * 1024;
    const acceptable = (info: Stats): void => {
      if (!info.isFile()) throw new Error(`${path} is not a regular file`);
      if (info.size > limit) throw new XrayError('TIFF_TOO_LARGE', `file is ${info.size} bytes, more than ${limit} for the pixel limit`);
    };
    // Checked before opening (opening a FIFO would block) and again on what was opened (the
    // path may have been replaced in between).
    acceptable(statSync(fsPath(path)));
    fd = openSync(fsPath(path), 'r');
    const opened = fstatSync(fd);
    acceptable(opened);
    // its own ArrayBuffer: geotiff takes it without a copy
    const bytes = scratch ? scratch.bytes(opened.size) : Buffer.allocUnsafeSlow(opened.size);
    let got = 0;
    while (got < bytes.length) {
      const n = readSync(fd, bytes, got, bytes.length - got, got);
      if (n === 0) break; // shrank meanwhile: what was there is what we decode
      got += n;
    }
    return { bytes: got === bytes.length ? bytes : bytes.subarray(0, got), size: got, mtimeMs: opened.mtimeMs };
  } catch (err) {
    throw toXrayError(err, 'FILE_UNREADABLE');
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

export async function decodeTiffFile(path: string, options: DecodeOptions = {}): Promise<Gray16Image> {
  return decodeTiff((await readCaptureFile(path, options)).bytes, options);
}

