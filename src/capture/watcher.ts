import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import { captureMatcher, folderIgnored } from './match.js';

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
}

/**
 * Watches the capture folder (chokidar, recursive) and reports each matching file once it is
 * complete: its size and mtime unchanged for `settleMs`. A file renamed into place arrives whole
 * and settles after one interval; one copied in chunks keeps re-arming its timer until the
 * writer stops. At start, `reconcile` lists what is already there (the restart case).
 */
export class CaptureWatcher {
  private watcher: FSWatcher | null = null;
  private readonly pending = new Map<string, { size: number; mtimeMs: number; timer: NodeJS.Timeout }>();
  private readonly matches: (p: string) => boolean;
  private readonly skipFolder: (p: string) => boolean;

  constructor(private readonly o: WatcherOptions) {
    this.matches = captureMatcher(o.dir, o.patterns, o.ignore);
    this.skipFolder = folderIgnored(o.dir, o.ignore);
  }

  async start(): Promise<void> {
    const watcher = watch(this.o.dir, {
      ignoreInitial: true,
      persistent: true,
      usePolling: this.o.poll,
      interval: 200,
      ignored: (path, stats) => (stats?.isDirectory() ? this.skipFolder(path) : false),
    });
    watcher.on('add', (p) => this.touch(p));
    watcher.on('change', (p) => this.touch(p));
    watcher.on('unlink', (p) => this.forget(p));
    watcher.on('error', (err) => this.o.logger.error({ err }, 'capture watcher error'));
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    this.watcher = watcher;
  }

  async stop(): Promise<void> {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    await this.watcher?.close();
    this.watcher = null;
  }

  /** Every matching file already in the folder, each settled once (oldest first). */
  async reconcile(isKnown: (f: SettledFile) => boolean): Promise<number> {
    const files: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        this.o.logger.warn({ dir, err: (err as Error).message }, 'cannot list capture folder');
        return;
      }
      for (const e of entries) {
        const p = join(dir, e.name);
        if (e.isDirectory()) {
          if (!this.skipFolder(p)) await walk(p);
        } else if (e.isFile() && this.matches(p)) {
          files.push(p);
        }
      }
    };
    await walk(this.o.dir);
    const found: SettledFile[] = [];
    for (const path of files) {
      const s = await statOrNull(path);
      if (s && !isKnown({ path, ...s })) found.push({ path, ...s });
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs || a.path.localeCompare(b.path));
    // Files still being written settle through the normal path.
    for (const f of found) this.arm(f.path, f.size, f.mtimeMs);
    return found.length;
  }

  pendingCount(): number {
    return this.pending.size;
  }

  private touch(path: string): void {
    if (!this.matches(path)) return;
    void statOrNull(path).then((s) => {
      if (s) this.arm(path, s.size, s.mtimeMs);
    });
  }

  private arm(path: string, size: number, mtimeMs: number): void {
    const prev = this.pending.get(path);
    if (prev) clearTimeout(prev.timer);
    const timer = setTimeout(() => void this.check(path), this.o.settleMs);
    this.pending.set(path, { size, mtimeMs, timer });
  }

  private async check(path: string): Promise<void> {
    const p = this.pending.get(path);
    if (!p) return;
    const s = await statOrNull(path);
    if (!s) {
      this.pending.delete(path);
      return;
    }
    if (s.size !== p.size || s.mtimeMs !== p.mtimeMs) {
      this.arm(path, s.size, s.mtimeMs);
      return;
    }
    this.pending.delete(path);
    this.o.onSettled({ path, size: s.size, mtimeMs: s.mtimeMs });
  }

  private forget(path: string): void {
    const p = this.pending.get(path);
    if (p) clearTimeout(p.timer);
    this.pending.delete(path);
  }
}

async function statOrNull(path: string): Promise<{ size: number; mtimeMs: number } | null> {
  try {
    const s = await stat(path);
    return s.isFile() ? { size: s.size, mtimeMs: s.mtimeMs } : null;
  } catch {
    return null;
  }
}
