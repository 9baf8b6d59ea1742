import { watch, type FSWatcher } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fsPath, nameFromBytes } from './names.js';

export interface TreeWatchOptions {
  dir: string;
  /** A folder (absolute path) not to descend into (capture.ignore). */
  skipFolder: (path: string) => boolean;
  /**
   * A name in a watched folder was created, written, renamed or deleted, or sits in a folder that
   * just appeared: the caller stats it to learn which. Folders are never reported.
   */
  onName: (path: string) => void;
  onError: (err: Error, dir: string) => void;
}

/**
 * Change notification for a folder tree with one inotify watch per folder (node:fs `watch`),
 * never one per file: a folder's watch already reports every write, rename and deletion of the
 * files in it. chokidar, used before, also put a watch on each file it saw, and that costs a
 * kernel watch (the per-user limit is 8192 on kernels before 5.11, as on JetPack 5) and ~10 KB of
 * the daemon's memory for every capture left in the folder (docs/decisions.md D31).
 *
 * Names are taken as bytes, so that a name that is not UTF-8 arrives intact (names.ts). A link to
 * a folder is not descended into (a capture that is a link is reported like any name).
 */
export class TreeWatch {
  private readonly folders = new Map<string, FSWatcher>();
  private closed = false;

  constructor(private readonly o: TreeWatchOptions) {}

  /** Watches the folder and every folder below it. */
  async start(): Promise<void> {
    await this.add(this.o.dir, false);
  }

  /** How many folders are watched (one kernel watch each). */
  folderCount(): number {
    return this.folders.size;
  }

  close(): void {
    this.closed = true;
    for (const w of this.folders.values()) w.close();
    this.folders.clear();
  }

  /**
   * Watches `dir`, then lists it: subfolders are added in turn and, for a folder that appeared
   * after the start (`report`), the files already in it are reported, since they were written
   * before its watch existed.
   */
  private async add(dir: string, report: boolean): Promise<void> {
    if (this.closed || this.folders.has(dir)) return;
    let w: FSWatcher;
    try {
      w = watch(fsPath(dir), { encoding: 'buffer', persistent: true }, (_event, name) => {
        if (name === null) void this.list(dir, true); // no name given: look at the whole folder
        else void this.changed(join(dir, nameFromBytes(name as Buffer)));
      });
    } catch (err) {
      this.o.onError(err as Error, dir);
      return;
    }
    w.on('error', (err) => {
      this.drop(dir);
      this.o.onError(err, dir);
    });
    this.folders.set(dir, w);
    await this.list(dir, report);
  }

  private async list(dir: string, report: boolean): Promise<void> {
    let entries;
    try {
      entries = await readdir(fsPath(dir), { withFileTypes: true, encoding: 'buffer' });
    } catch {
      return; // gone again: its parent's watch reports that
    }
    for (const e of entries) {
      const path = join(dir, nameFromBytes(e.name));
      if (e.isDirectory()) {
        if (!this.o.skipFolder(path)) await this.add(path, report);
      } else if (report) {
        this.o.onName(path);
      }
    }
  }

  /** One event in a watched folder: a new folder is watched, a vanished one dropped, else reported. */
  private async changed(path: string): Promise<void> {
    if (this.closed) return;
    const s = await lstat(fsPath(path)).catch(() => null);
    if (s?.isDirectory()) {
      if (!this.o.skipFolder(path)) await this.add(path, true);
      return;
    }
    if (this.folders.has(path)) this.drop(path); // a watched folder deleted or moved away
    this.o.onName(path);
  }

  /** Stops watching `dir` and every folder below it. */
  private drop(dir: string): void {
    const prefix = dir + '/';
    for (const [d, w] of this.folders) {
      if (d === dir || d.startsWith(prefix)) {
        w.close();
        this.folders.delete(d);
      }
    }
  }
}
