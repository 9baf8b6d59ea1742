import type { Logger } from 'pino';
import type { PreparedCapture } from './messages.js';

/**
 * Errors a file still being written can show: data cut short, a directory written last (libtiff
 * puts it after the image data) that lies past the current end, a compressed stream cut short.
 */
const INCOMPLETE_LOOKING = new Set(['TIFF_TRUNCATED', 'TIFF_BAD_OFFSET', 'TIFF_CORRUPT_DATA']);

/** What admission asks of the queue and the audit trail. */
export interface AdmissionQueue {
  audited(file: string, sha256: string): boolean;
  dequeue(file: string): void;
}

/**
 * Whether a prepared capture is scored now. Not when its content has an audit row already (it
 * leaves the queue); not yet when it reads as truncated (a copy that paused longer than
 * settle_ms: one grace period, and its error is recorded only if the file is unchanged after
 * it); not yet when its preparation hit our own bug (INTERNAL_ERROR, logged with its stack: it
 * is tried once more, then recorded).
 */
export class Admission {
  /** path → the stat seen, and until when it waits. */
  private readonly waitingFor = new Map<string, { size: number; mtimeMs: number; until: number }>();
  /** Files whose preparation failed with INTERNAL_ERROR once: the next failure is recorded. */
  private readonly retried = new Set<string>();

  constructor(private readonly queue: AdmissionQueue, private readonly graceMs: number, private readonly logger: Logger, private readonly wake: () => void) {}

  /** true: score it (or record its error). false: not now (its tensor is to be released). */
  admit(prepared: PreparedCapture): boolean {
    if (this.defer(prepared) || this.retryInternal(prepared)) return false;
    if (prepared.sha256 && this.queue.audited(prepared.file, prepared.sha256)) {
      this.queue.dequeue(prepared.file);
      this.logger.info({ file: prepared.file }, 'already audited (same content); not scored again');
      return false;
    }
    return true;
  }

  get size(): number {
    return this.waitingFor.size;
  }

  waiting(file: string): boolean {
    return (this.waitingFor.get(file)?.until ?? 0) > performance.now();
  }

  /** true: not scored now, tried again after the grace period. false: go on (and forgotten here). */
  private defer(prepared: PreparedCapture): boolean {
    if (prepared.ok || !INCOMPLETE_LOOKING.has(prepared.error.code) || !prepared.stat) {
      this.waitingFor.delete(prepared.file);
      return false;
    }
    const { size, mtimeMs } = prepared.stat;
    const d = this.waitingFor.get(prepared.file);
    const same = d !== undefined && d.size === size && d.mtimeMs === mtimeMs;
    if (same && performance.now() >= d.until) {
      this.waitingFor.delete(prepared.file);
      return false;
    }
    if (!same) {
      this.waitingFor.set(prepared.file, { size, mtimeMs, until: performance.now() + this.graceMs });
      setTimeout(this.wake, this.graceMs + 10).unref();
      this.logger.info({ file: prepared.file, size, graceMs: this.graceMs }, 'capture looks incomplete; waiting for its writer');
    }
    return true;
  }

  private retryInternal(prepared: PreparedCapture): boolean {
    if (prepared.ok || prepared.error.code !== 'INTERNAL_ERROR') return false;
    const again = this.retried.has(prepared.file);
    this.logger.error({ file: prepared.file, err: prepared.error.message, stack: prepared.error.stack },
      again ? 'internal error preparing the capture again: recording it' : 'internal error preparing the capture: trying it once more');
    if (again) this.retried.delete(prepared.file);
    else this.retried.add(prepared.file);
    return !again;
  }
}
