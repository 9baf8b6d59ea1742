import { realpath } from 'node:fs/promises';
import { sep } from 'node:path';
import type { Logger } from 'pino';
import { fsPath } from '../capture/names.js';
import type { InspectionInput, QueueRow, Store } from '../record/store.js';
import type { Prepared, ScoreResult, Scorer } from '../score/scorer.js';

export interface PipelineContext {
  stationId: string;
  verdictTopic: string;
  store: Store;
  /** null: no model yet (a fresh station waiting for model sync); captures stay queued. */
  scorer: Scorer | null;
  logger: Logger;
  /** Links resolving outside this folder are not followed (null: follow any link). */
  confineTo: string | null;
  /** How long a capture that reads as truncated waits for its writer before it is recorded as such. */
  incompleteGraceMs: number;
  /** A row was recorded (audit + outbox); the publisher should send it. */
  onRecorded: (result: ScoreResult, seq: number) => void;
  /** `recordError` changed (a database fault began or ended): tell the line now. */
  onFault?: () => void;
  /** The model failed this many inferences in a row (errors or non-finite outputs). */
  onModelFailures?: (consecutive: number, scorer: Scorer) => void;
}

/**
 * Errors a file still being written can show: data cut short, a directory written last (libtiff
 * puts it after the image data) that lies past the current end, a compressed stream cut short.
 */
const INCOMPLETE_LOOKING = new Set(['TIFF_TRUNCATED', 'TIFF_BAD_OFFSET', 'TIFF_CORRUPT_DATA']);

interface InFlight {
  row: QueueRow;
  /** The model this capture was prepared for; it is also the one that scores it. */
  scorer: Scorer;
  prepared: Promise<Prepared>;
  /** The preparation's result once it is there. */
  ready: Prepared | null;
  /** Its inference, once started. */
  scoring: Promise<ScoreResult> | null;
}

const MODEL_FAILURES = new Set(['INFER_FAILED', 'INFER_NON_FINITE', 'INFER_WORKER_EXITED']);

/**
 * The capture loop: takes the oldest queued capture, prepares it (read, hash, decode,
 * preprocess) while the previous one is in inference, scores it, and records the audit row and
 * its outbox message in one transaction that also removes it from the queue. A capture already
 * audited (same path, same sha256) is dropped from the queue without a second row.
 */
export class Pipeline {
  private running = false;
  private loop: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;
  /** Captures that read as truncated, waiting for their writer: path → stat seen, retry time. */
  private readonly deferred = new Map<string, { size: number; mtimeMs: number; until: number }>();
  readonly counts = { pass: 0, flag: 0, error: 0, skipped: 0 };
  /** Why the last verdict could not be recorded (null once one is recorded again). */
  recordError: string | null = null;
  private scorer: Scorer | null;
  private pendingSwap: { scorer: Scorer; resolve: (old: Scorer | null) => void } | null = null;
  private consecutiveModelFailures = 0;

  constructor(private readonly ctx: PipelineContext) {
    this.scorer = ctx.scorer;
  }

  get activeScorer(): Scorer | null {
    return this.scorer;
  }

  /**
   * Switches models between two captures: the capture in flight finishes on the old model, the
   * next one is prepared for the new one. Resolves with the old scorer (the caller closes it).
   */
  swap(next: Scorer): Promise<Scorer | null> {
    if (!this.running) {
      const old = this.scorer;
      this.scorer = next;
      this.consecutiveModelFailures = 0;
      return Promise.resolve(old);
    }
    return new Promise((resolve) => {
      this.pendingSwap?.resolve(this.pendingSwap.scorer); // a newer request supersedes an unapplied one
      this.pendingSwap = { scorer: next, resolve };
      this.wake();
    });
  }

  private applySwap(): void {
    const swap = this.pendingSwap;
    if (!swap) return;
    this.pendingSwap = null;
    const old = this.scorer;
    this.scorer = swap.scorer;
    this.consecutiveModelFailures = 0;
    swap.resolve(old);
  }

  async start(): Promise<void> {
    this.running = true;
    this.loop = this.runForever();
  }

  /** The loop never dies: an unexpected error (e.g. the database refusing reads) is logged and retried. */
  private async runForever(): Promise<void> {
    while (this.running) {
      try {
        await this.run();
      } catch (err) {
        this.ctx.logger.error({ err: (err as Error).message }, 'capture loop error; retrying in 5 s');
        await new Promise((r) => setTimeout(r, 5000));
      }
    }
  }

  /** Finishes the capture in inference, records it, and returns; queued captures stay queued. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.loop;
    this.applySwap();
  }

  wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  private next(exclude: string | null): QueueRow | null {
    const now = performance.now();
    const waiting = (path: string): boolean => (this.deferred.get(path)?.until ?? 0) > now;
    return this.ctx.store.queueHead(2 + this.deferred.size).find((r) => r.file_path !== exclude && !waiting(r.file_path)) ?? null;
  }

  /**
   * A file that reads as truncated may still be in the writer's hands (a copy that paused longer
   * than settle_ms). Give it one grace period; record the error only if it is unchanged after it.
   */
  private deferIfIncomplete(prepared: Prepared): boolean {
    if (prepared.ok || !INCOMPLETE_LOOKING.has(prepared.failure.reason) || !prepared.capture) return false;
    const { size, mtimeMs } = prepared.capture;
    const d = this.deferred.get(prepared.file);
    const same = d !== undefined && d.size === size && d.mtimeMs === mtimeMs;
    if (same && performance.now() >= d.until) return false;
    if (!same) {
      const until = performance.now() + this.ctx.incompleteGraceMs;
      this.deferred.set(prepared.file, { size, mtimeMs, until });
      setTimeout(() => this.wake(), this.ctx.incompleteGraceMs + 10).unref();
      this.ctx.logger.info({ file: prepared.file, size, graceMs: this.ctx.incompleteGraceMs }, 'capture looks incomplete; waiting for its writer');
    }
    return true;
  }

  private async run(): Promise<void> {
    let current: InFlight | null = null;
    // On stop, a capture already in inference is still recorded.
    while (this.running || current?.scoring) {
      if (!current) {
        this.applySwap(); // nothing in flight: the safe moment to switch models
        const row = this.scorer ? this.next(null) : null; // no model yet: everything stays queued
        if (!row || !this.scorer) {
          await new Promise<void>((resolve) => {
            this.wakeUp = resolve;
          });
          continue;
        }
        current = this.launch(this.scorer, row);
      }
      const prepared = await current.prepared;
      if (!current.scoring) {
        if (!this.admit(current.scorer, prepared)) {
          current = null;
          continue;
        }
        current.scoring = current.scorer.complete(prepared);
      }
      // Prepare the next capture on this thread while the worker runs inference (unless a model
      // switch is waiting: then the next capture is prepared for the new model).
      const nextRow: QueueRow | null = this.running && !this.pendingSwap ? this.next(current.row.file_path) : null;
      let next: InFlight | null = nextRow ? this.launch(current.scorer, nextRow) : null;
      const result = await current.scoring;
      // A preparation that finished during inference was collected as it ended (D26); its promise
      // chain settles within this turn's microtasks, after this continuation: let it.
      if (next && !next.ready) await new Promise<void>((resolve) => setImmediate(resolve));
      this.trackModelHealth(result, current.scorer);
      // Keep the inference worker busy: the next capture (prepared meanwhile) goes into inference
      // before this one is recorded, so the record's fsync is not a gap between inferences.
      if (next?.ready && this.running) {
        if (this.admit(next.scorer, next.ready)) next.scoring = next.scorer.complete(next.ready);
        else next = null;
      }
      try {
        this.record(current.row, current.scorer, prepared, result);
        if (this.recordError) {
          this.recordError = null;
          this.ctx.onFault?.();
        }
      } catch (err) {
        const was = this.recordError;
        this.recordError = `database: ${(err as Error).message}`;
        if (was !== this.recordError) this.ctx.onFault?.();
        // The database refused the row (disk full, I/O error): the capture stays queued and is
        // retried; nothing is published that is not recorded.
        this.ctx.logger.error({ err: (err as Error).message, file: current.row.file_path }, 'could not record verdict; will retry');
        await new Promise((r) => setTimeout(r, 1000));
      }
      current = next;
    }
    // Stopping with a capture prepared but not scored: it stays queued; its tensor is freed.
    if (current) void current.prepared.then((p) => current.scorer.discard(p));
  }

  /** Starts preparing `row` for `scorer`. */
  private launch(scorer: Scorer, row: QueueRow): InFlight {
    const flight: InFlight = { row, scorer, prepared: this.prepare(scorer, row.file_path), ready: null, scoring: null };
    void flight.prepared.then((p) => {
      flight.ready = p;
    });
    return flight;
  }

  /**
   * The checks before inference: false when the capture is not scored now (deferred, or already
   * audited); its preparation is then discarded.
   */
  private admit(scorer: Scorer, prepared: Prepared): boolean {
    if (this.deferIfIncomplete(prepared)) {
      scorer.discard(prepared);
      return false;
    }
    this.deferred.delete(prepared.file);
    if (prepared.sha256 && this.ctx.store.auditedBySha(prepared.file, prepared.sha256)) {
      scorer.discard(prepared);
      this.ctx.store.dequeue(prepared.file);
      this.counts.skipped++;
      this.ctx.logger.info({ file: prepared.file }, 'already audited (same content); not scored again');
      return false;
    }
    return true;
  }

  /** Stage 1, after checking that the path does not lead out of the capture folder. */
  private async prepare(scorer: Scorer, file: string): Promise<Prepared> {
    const root = this.ctx.confineTo;
    if (root) {
      const real = await realpath(fsPath(file)).catch(() => null);
      if (real && real !== root && !real.startsWith(root + sep)) {
        const message = `${file} links to ${real}, outside the capture folder (capture.follow_symlinks is false)`;
        return { ok: false, file, capture: null, sha256: null, failure: { file, verdict: 'error', reason: 'FILE_OUTSIDE_CAPTURE_DIR', error: { code: 'FILE_OUTSIDE_CAPTURE_DIR', message } } };
      }
    }
    return scorer.prepare(file);
  }

  private trackModelHealth(result: ScoreResult, scorer: Scorer): void {
    if (scorer !== this.scorer) return;
    if (result.verdict === 'error' && MODEL_FAILURES.has(result.reason)) {
      this.consecutiveModelFailures++;
      this.ctx.onModelFailures?.(this.consecutiveModelFailures, scorer);
    } else if (result.verdict !== 'error') {
      this.consecutiveModelFailures = 0;
    }
  }

  private record(row: QueueRow, scorer: Scorer, prepared: Prepared, result: ScoreResult): void {
    const m = scorer.bundle.manifest;
    // What could not be read (a FIFO, a dangling link, a link out of the folder) keeps the stat the
    // watcher queued it with: the identity a rescan or restart checks, so it is recorded once.
    const stat = prepared.capture ?? { size: row.file_bytes, mtimeMs: row.file_mtime_ms };
    const mtime = stat.mtimeMs;
    const ok = result.verdict !== 'error';
    const input: InspectionInput = {
      station_id: this.ctx.stationId,
      file_path: row.file_path,
      file_sha256: prepared.sha256,
      file_bytes: stat.size,
      file_mtime_ms: mtime,
      width: ok ? result.width : null,
      height: ok ? result.height : null,
      captured_at: new Date(mtime).toISOString(),
      scored_at: new Date().toISOString(),
      verdict: result.verdict,
      reason: result.reason,
      p_abnormal: ok ? result.p_abnormal : null,
      threshold: m.decision.threshold,
      model_name: m.name,
      model_version: m.version,
      model_sha256: scorer.bundle.modelSha256,
      bundle_sha256: scorer.bundle.manifestSha256,
      conversion: m.preprocess.conversion,
      bounds_min: m.preprocess.bounds?.min ?? null,
      bounds_max: m.preprocess.bounds?.max ?? null,
      local_min: ok ? result.local_bounds?.min ?? null : null,
      local_max: ok ? result.local_bounds?.max ?? null : null,
      decode_ms: ok ? result.timings_ms.decode : null,
      preprocess_ms: ok ? result.timings_ms.preprocess : null,
      infer_ms: ok ? result.timings_ms.infer : null,
      total_ms: ok ? result.timings_ms.total : null,
      error_code: ok ? null : result.error.code,
      error_message: ok ? null : result.error.message,
    };
    const { seq } = this.ctx.store.record(input, this.ctx.verdictTopic);
    this.counts[result.verdict]++;
    this.ctx.logger.info(
      { seq, file: row.file_path, verdict: result.verdict, reason: result.reason, ...(ok ? { p_abnormal: result.p_abnormal, ms: result.timings_ms.total } : { error: result.error }) },
      'capture scored',
    );
    if (!ok) this.ctx.store.event('error', `${row.file_path}: ${result.error.code}: ${result.error.message}`, { seq });
    this.ctx.onRecorded(result, seq);
  }
}
