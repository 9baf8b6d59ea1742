import { lstat, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { captureMatcher, folderIgnored } from './match.js';
import { fsPath, nameFromBytes } from './names.js';
import { TreeWatch } from './tree-watch.js';

/** How often a missing capture folder is looked for (the rescan interval is for everything else). */
const MISSING_PROBE_MS = 1000;
/** How often the folder is listed in poll mode (capture.poll). */
const POLL_MS = 1000;

export interface SettledFile {
  path: string;
  size: number;
  mtimeMs: number;
}

export interface WatcherOptions {
  dir: string;
  patterns: string[];
  ignore: string[];
  settleMs: number;
  poll: boolean;
  logger: Logger;
  /** Called once per complete file (size and mtime unchanged for settleMs). */
  onSettled: (file: SettledFile) => void;
  /** How a path's size and mtime are read (default `statCapture`; tests slow it down). */
  statFile?: (path: string) => Promise<{ size: number; mtimeMs: number } | null>;
}

/**
 * Watches the capture folder (one inotify watch per folder, tree-watch.ts; or a listing every
 * second with capture.poll) and reports each matching file once it is
 * complete: its size and mtime unchanged for `settleMs`. A file renamed into place arrives whole
 * and settles after one interval; one copied in chunks keeps re-arming its timer until the
 * writer stops. At start, `reconcile` lists what is already there (the restart case). Files that
 * settle together are reported oldest first (mtime, then path), so that a backlog is scored in
 * arrival order.
 */
export class CaptureWatcher {
  private tree: TreeWatch | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private polling = false;
  private readonly pending = new Map<string, { size: number; mtimeMs: number; timer: NodeJS.Timeout }>();
  /** Paths whose settle timer fired (with that timer), checked together by the next `flush`. */
  private readonly due = new Map<string, NodeJS.Timeout>();
  /** The flushes, one after another: files are reported in the order their checks began. */
  private flushes: Promise<void> = Promise.resolve();
  private rescanTimer: NodeJS.Timeout | null = null;
  private missingProbe: NodeJS.Timeout | null = null;
  private rescanning = false;
  /** The last `isKnown` given to reconcile: what a poll checks against. */
  private known: ((f: SettledFile) => boolean) | null = null;
  /** true while the capture folder itself is missing (an unmounted share, a deleted folder). */
  folderMissing = false;
  private readonly matches: (p: string) => boolean;
  private readonly skipFolder: (p: string) => boolean;
  private readonly stat: (path: string) => Promise<{ size: number; mtimeMs: number } | null>;

  constructor(private readonly o: WatcherOptions) {
    this.stat = o.statFile ?? statCapture;
    this.matches = captureMatcher(o.dir, o.patterns, o.ignore);
    this.skipFolder = folderIgnored(o.dir, o.ignore);
  }

  async start(): Promise<void> {
    await this.watchFolder();
  }

  private async watchFolder(): Promise<void> {
    if (this.o.poll) {
      // A network share delivers no inotify events for writes made elsewhere: list it instead.
      this.pollTimer = setInterval(() => this.pollOnce(), POLL_MS);
      this.pollTimer.unref();
      return;
    }
    const tree = new TreeWatch({
      dir: this.o.dir,
      skipFolder: this.skipFolder,
      onName: (p) => this.touch(p),
      onError: (err, dir) => this.o.logger.error({ dir, err: err.message }, 'capture watcher error'),
    });
    await tree.start();
    this.tree = tree;
  }

  /** Poll mode: one listing at a time, against what the last reconcile was told is known. */
  private pollOnce(): void {
    if (this.polling || !this.known || this.folderMissing) return;
    this.polling = true;
    void this.reconcile(this.known)
      .catch((err) => this.o.logger.error({ err: (err as Error).message }, 'capture folder poll failed'))
      .finally(() => { this.polling = false; });
  }

  /**
   * A safety net under the watcher: every `intervalMs`, list the folder again (stat only) and queue
   * what nobody reported — files that arrived while the folder was gone and came back (the watcher
   * is restarted then), or events a network share never delivered.
   */
  startRescan(intervalMs: number, isKnown: (f: SettledFile) => boolean, onFolderState: (missing: boolean) => void): void {
    const check = (first = false): void => {
      if (this.rescanning) return;
      this.rescanning = true;
      void (async () => {
        const exists = await stat(this.o.dir).then((s) => s.isDirectory(), () => false);
        if (!exists) {
          const was = this.folderMissing;
          this.folderMissing = true; // before the callback: the status it publishes reads it
          if (!was) onFolderState(true);
          // a missing folder is looked for every second, so that its return is noticed at once
          this.missingProbe ??= setInterval(() => check(), MISSING_PROBE_MS).unref();
          return;
        }
        if (this.missingProbe) clearInterval(this.missingProbe);
        this.missingProbe = null;
        if (first && !this.folderMissing) return; // there, and reconciled by the caller just now
        if (this.folderMissing) {
          this.folderMissing = false;
          onFolderState(false);
          this.closeWatch();
          await this.watchFolder(); // a new inode: the old watch sees nothing
        }
        await this.reconcile(isKnown);
      })().catch((err) => this.o.logger.error({ err: (err as Error).message }, 'capture folder rescan failed'))
        .finally(() => { this.rescanning = false; });
    };
    this.rescanTimer = setInterval(() => check(), intervalMs);
    this.rescanTimer.unref();
    check(true); // a folder missing at start is a fault from the first second
  }

  async stop(): Promise<void> {
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    if (this.missingProbe) clearInterval(this.missingProbe);
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    this.due.clear();
    this.closeWatch();
  }

  private closeWatch(): void {
    this.tree?.close();
    this.tree = null;
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  /** Every matching file already in the folder, each settled once (oldest first). */
  async reconcile(isKnown: (f: SettledFile) => boolean): Promise<number> {
    this.known = isKnown;
    const files: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        // as bytes: names that are not UTF-8 are kept (see names.ts)
        entries = await readdir(fsPath(dir), { withFileTypes: true, encoding: 'buffer' });
      } catch (err) {
        this.o.logger.warn({ dir, err: (err as Error).message }, 'cannot list capture folder');
        return;
      }
      for (const e of entries) {
        const p = join(dir, nameFromBytes(e.name));
        if (e.isDirectory()) {
          if (!this.skipFolder(p)) await walk(p); // a folder, whatever its name: never a capture
        } else if (this.matches(p)) {
          // files, and also links, FIFOs, devices: each gets a verdict (scored, or an error), once
          // until it changes (the audit row keeps this stat as its identity)
          files.push(p);
        }
      }
    };
    await walk(this.o.dir);
    const found: SettledFile[] = [];
    for (const path of files) {
      const s = await this.stat(path);
      if (s && !isKnown({ path, ...s })) found.push({ path, ...s });
    }
    found.sort(oldestFirst);
    // Files still being written settle through the normal path (ones already settling keep their timer).
    for (const f of found) if (!this.pending.has(f.path)) this.arm(f.path, f.size, f.mtimeMs);
    return found.length;
  }

  /** Folders under an inotify watch (0 in poll mode). */
  watchedFolders(): number {
    return this.tree?.folderCount() ?? 0;
  }

  pendingCount(): number {
    return this.pending.size;
  }

  /** A name changed: settle it if it is a capture that is there, forget it if it is gone. */
  private touch(path: string): void {
    if (!this.matches(path)) return;
    void this.stat(path).then((s) => {
      if (s) this.arm(path, s.size, s.mtimeMs);
      else this.forget(path);
    }, () => undefined);
  }

  private arm(path: string, size: number, mtimeMs: number): void {
    const prev = this.pending.get(path);
    if (prev) clearTimeout(prev.timer);
    const timer = setTimeout(() => {
      if (this.due.size === 0) setImmediate(() => this.scheduleFlush());
      this.due.set(path, timer);
    }, this.o.settleMs);
    this.pending.set(path, { size, mtimeMs, timer });
  }

  private scheduleFlush(): void {
    this.flushes = this.flushes.then(() => this.flush()).catch((err) => {
      this.o.logger.error({ err: (err as Error).message }, 'capture settle check failed');
    });
  }

  /**
   * Checks every file whose timer fired in one turn of the event loop (a backlog's are armed
   * together) and reports the settled ones oldest first (mtime, then path). One check per file
   * used to report in the order the stats came back from libuv's thread pool, and the capture
   * loop, woken by the first, took it even when an older one was a moment behind.
   */
  private async flush(): Promise<void> {
    const batch = [...this.due];
    this.due.clear();
    const stats = await Promise.all(batch.map(([path]) => this.stat(path).catch(() => undefined)));
    const settled: SettledFile[] = [];
    batch.forEach(([path, timer], i) => {
      const p = this.pending.get(path);
      if (!p || p.timer !== timer) return; // forgotten, or changed again since its timer fired
      const s = stats[i];
      if (s === undefined) this.arm(path, p.size, p.mtimeMs); // the stat failed: look again later
      else if (!s) this.pending.delete(path);
      else if (s.size !== p.size || s.mtimeMs !== p.mtimeMs) this.arm(path, s.size, s.mtimeMs);
      else {
        this.pending.delete(path);
        settled.push({ path, size: s.size, mtimeMs: s.mtimeMs });
      }
    });
    settled.sort(oldestFirst);
    for (const f of settled) {
      try {
        this.o.onSettled(f);
      } catch (err) {
        this.o.logger.error({ file: f.path, err: (err as Error).message }, 'capture could not be handed on');
      }
    }
  }

  private forget(path: string): void {
    const p = this.pending.get(path);
    if (p) clearTimeout(p.timer);
    this.pending.delete(path);
  }
}

/** Arrival order: mtime, then path (the capture queue's order too). */
function oldestFirst(a: SettledFile, b: SettledFile): number {
  return a.mtimeMs - b.mtimeMs || a.path.localeCompare(b.path);
}

/**
 * Size and mtime of what a capture path names, without opening it: a regular file (through a
 * link), or the entry itself for anything else (FIFO, device, dangling link), which the capture
 * loop then records as an error — with this stat as its identity, so that a rescan or a restart
 * does not record it again until it changes. Null when the path is gone or is a folder (or a link
 * to one): a folder is never a capture.
 */
export async function statCapture(path: string): Promise<{ size: number; mtimeMs: number } | null> {
  try {
    const s = await stat(fsPath(path));
    if (s.isDirectory()) return null;
    return s.isFile() ? { size: s.size, mtimeMs: s.mtimeMs } : { size: 0, mtimeMs: s.mtimeMs };
  } catch {
    try {
      const l = await lstat(fsPath(path)); // a dangling link
      return { size: 0, mtimeMs: l.mtimeMs };
    } catch {
      return null;
    }
  }
}
