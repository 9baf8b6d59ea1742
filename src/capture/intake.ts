import type { Logger } from 'pino';
import type { Component, EventBus } from '../events.js';
import type { StationEvents } from '../pipeline/messages.js';
import type { EventKind } from '../errors.js';
import { CaptureWatcher, type SettledFile } from './watcher.js';

export interface IntakeSettings {
  dir: string;
  patterns: string[];
  ignore: string[];
  settle_ms: number;
  poll: boolean;
  rescan_s: number;
}

/** What the capture stage needs of the queue and the audit trail (record/store.ts is it). */
export interface CaptureQueue {
  auditedByStat(path: string, bytes: number, mtimeMs: number): boolean;
  isQueued(path: string): boolean;
  enqueue(row: { file_path: string; file_bytes: number; file_mtime_ms: number }): void;
  queueCount(): number;
  event(kind: EventKind, message: string): void;
}

/**
 * The capture stage as a component: the watcher, the reconcile at start (what arrived while the
 * station was down), the periodic rescan and the missing-folder probe; each complete file not yet
 * audited goes into the queue (`capture.queued`). A database that refuses the queue row, and a
 * capture folder that is gone, are faults (`fault.changed`); the file waits where it is.
 */
export class CaptureIntake implements Component {
  readonly name = 'watcher';
  private readonly watcher: CaptureWatcher;
  private queueFault: string | null = null;
  private stopped = false;

  constructor(
    private readonly settings: IntakeSettings,
    private readonly store: CaptureQueue,
    private readonly logger: Logger,
    private readonly events: EventBus<StationEvents>,
  ) {
    this.watcher = new CaptureWatcher({
      dir: settings.dir, patterns: settings.patterns, ignore: settings.ignore, settleMs: settings.settle_ms,
      poll: settings.poll, logger, onSettled: (f) => this.queue(f),
    });
  }

  /** true while the capture folder itself is missing. */
  get folderMissing(): boolean {
    return this.watcher.folderMissing;
  }

  async start(): Promise<void> {
    const s = this.settings;
    await this.watcher.start();
    const known = (f: SettledFile): boolean => this.store.auditedByStat(f.path, f.size, f.mtimeMs) || this.store.isQueued(f.path);
    const found = await this.watcher.reconcile(known);
    this.watcher.startRescan(s.rescan_s * 1000, known, (missing) => {
      const message = missing ? `capture folder ${s.dir} is missing` : `capture folder ${s.dir} is back`;
      (missing ? this.logger.error.bind(this.logger) : this.logger.info.bind(this.logger))(message);
      this.store.event(missing ? 'error' : 'capture', message);
      this.events.emit('fault.changed', { source: 'capture-folder', message: missing ? message : null });
    });
    this.logger.info({ dir: s.dir, found, queued: this.store.queueCount() }, 'watching the capture folder');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.watcher.stop();
  }

  private queue(f: SettledFile): void {
    if (this.stopped) return;
    try {
      if (this.store.auditedByStat(f.path, f.size, f.mtimeMs)) return;
      this.store.enqueue({ file_path: f.path, file_bytes: f.size, file_mtime_ms: f.mtimeMs });
      this.setQueueFault(null);
      this.events.emit('capture.queued', { file: f.path });
    } catch (err) {
      this.setQueueFault(`database: ${(err as Error).message}`);
      // The database refused (disk full, I/O error): the file stays where it is; try again
      // later (and the reconcile at the next start finds it in any case).
      this.logger.error({ file: f.path, err: (err as Error).message }, 'could not queue capture; retrying in 5 s');
      setTimeout(() => this.queue(f), 5000).unref();
    }
  }

  private setQueueFault(message: string | null): void {
    if (message === this.queueFault) return;
    this.queueFault = message;
    this.events.emit('fault.changed', { source: 'queue', message });
  }
}
