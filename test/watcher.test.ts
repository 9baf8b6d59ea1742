import { appendFile, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync, readlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, expect, it } from 'vitest';
import { CaptureWatcher, statCapture, type SettledFile } from '../src/capture/watcher.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/**
 * A backlog's files settle together; they must reach the queue oldest first, since the capture
 * loop takes the first one it is handed. Checked with each settle stat made slow in reverse order
 * of age (the thread pool may answer in any order), and with real stats as well.
 */
it('a backlog is handed on oldest first (mtime, then name), whatever order the checks finish in', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'xray-qc-watch-'));
  dirs.push(dir);
  const n = 60;
  const t0 = Date.now() / 1000 - 3600;
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `c-${String(i).padStart(3, '0')}.tif`;
    await writeFile(join(dir, name), Buffer.alloc(10 + i));
    // two files per second: mtime decides, then the name
    utimesSync(join(dir, name), t0 + Math.floor(i / 2), t0 + Math.floor(i / 2));
    names.push(name);
  }
  const expected = names.map((name, i) => ({ name, mtime: Math.floor(i / 2) }))
    .sort((a, b) => a.mtime - b.mtime || a.name.localeCompare(b.name)).map((x) => x.name);
  for (const slowFirst of [true, false]) {
    const seen: SettledFile[] = [];
    let armed = false;
    const w = new CaptureWatcher({
      dir, patterns: ['*.tif'], ignore: [], settleMs: 30, poll: false, logger: pino({ level: 'silent' }),
      onSettled: (f) => seen.push(f),
      // once the backlog is armed, the oldest file's settle check answers last, the newest's first
      statFile: async (p) => {
        if (slowFirst && armed) await new Promise((r) => setTimeout(r, 4 * (n - names.indexOf(p.split('/').pop()!))));
        return statCapture(p);
      },
    });
    await w.start();
    await w.reconcile(() => false);
    armed = true;
    await expect.poll(() => seen.length, { timeout: 10_000 }).toBe(n);
    await w.stop();
    expect(seen.map((f) => f.path.split('/').pop())).toEqual(expected);
  }
});

function watcherOn(dir: string, seen: SettledFile[], poll = false, ignore: string[] = [], settleMs = 50): CaptureWatcher {
  return new CaptureWatcher({
    dir, patterns: ['**/*.tif'], ignore, settleMs, poll, logger: pino({ level: 'silent' }),
    onSettled: (f) => seen.push(f),
  });
}

/** The kernel's inotify watches held by this process (Linux /proc), whoever made them. */
function inotifyWatches(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) !== 'anon_inode:inotify') continue;
      n += readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n').filter((l) => l.startsWith('inotify wd:')).length;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

const names = (seen: SettledFile[], dir: string): string[] => seen.map((f) => f.path.slice(dir.length + 1)).sort();

/**
 * One kernel watch per folder, none per file: 400 captures left in the folder cost no watches
 * (chokidar put one on each). Files in a folder made after the start are found, also those
 * written before its watch existed; a folder moved within the tree is followed under its new
 * name (its files are new paths, and reported again, as a restart's listing would find them); an ignored folder is not watched; a name that is not UTF-8 arrives as its bytes.
 */
it('watches folders, not files: new, nested, moved and ignored folders; a name that is not UTF-8', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'xray-qc-watch-'));
  dirs.push(dir);
  await mkdir(join(dir, 'day-1'));
  await mkdir(join(dir, 'skip'));
  const seen: SettledFile[] = [];
  const w = watcherOn(dir, seen, false, ['skip']);
  await w.start();
  await w.reconcile(() => false);
  for (let i = 0; i < 400; i++) await writeFile(join(dir, 'day-1', `c-${i}.tif`), Buffer.alloc(8));
  await expect.poll(() => seen.length, { timeout: 10_000 }).toBe(400);
  expect(w.watchedFolders()).toBe(2); // the folder and day-1; `skip` is ignored
  expect(inotifyWatches()).toBe(2); // the kernel agrees: no watch per file

  seen.length = 0;
  // a folder tree made in one go (mkdir -p, then files) before the watcher can see the new folder
  await mkdir(join(dir, 'day-2', 'lane-a'), { recursive: true });
  await writeFile(join(dir, 'day-2', 'lane-a', 'early.tif'), Buffer.alloc(8));
  await writeFile(join(dir, 'day-2', 'top.tif'), Buffer.alloc(8));
  await writeFile(join(dir, 'skip', 'ignored.tif'), Buffer.alloc(8));
  await expect.poll(() => names(seen, dir), { timeout: 10_000 }).toEqual(['day-2/lane-a/early.tif', 'day-2/top.tif']);
  expect(w.watchedFolders()).toBe(4);

  seen.length = 0;
  await rename(join(dir, 'day-2'), join(dir, 'day-2b'));
  await sleep(300);
  await writeFile(join(dir, 'day-2b', 'lane-a', 'after-move.tif'), Buffer.alloc(8));
  const latin1 = Buffer.concat([Buffer.from(dir + '/day-2b/Elektrode_'), Buffer.of(0xe4), Buffer.from('.tif')]);
  writeFileSync(latin1, Buffer.alloc(8));
  await expect.poll(() => names(seen, dir), { timeout: 10_000 })
    .toEqual(['day-2b/Elektrode_\uefe4.tif', 'day-2b/lane-a/after-move.tif', 'day-2b/lane-a/early.tif', 'day-2b/top.tif']);
  expect(w.watchedFolders()).toBe(4); // day-2 and day-2/lane-a dropped, day-2b and its lane added

  await rm(join(dir, 'day-2b'), { recursive: true });
  await expect.poll(() => w.watchedFolders(), { timeout: 10_000 }).toBe(2);
  await w.stop();
});

it('poll mode (network shares): the folder is listed every second; a file still being written settles once complete', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'xray-qc-watch-'));
  dirs.push(dir);
  const seen: SettledFile[] = [];
  const w = watcherOn(dir, seen, true, [], 500);
  await w.start();
  // as the daemon's: what was handed on (it is audited or queued by then) is known
  await w.reconcile((f) => seen.some((s) => s.path === f.path && s.size === f.size && s.mtimeMs === f.mtimeMs));
  expect(w.watchedFolders()).toBe(0);
  const path = join(dir, 'slow.tif');
  await writeFile(path, Buffer.alloc(100));
  for (let i = 0; i < 5; i++) {
    await sleep(300); // the writer adds a chunk every 0.3 s: within settle_ms, so never settled half-written
    await appendFile(path, Buffer.alloc(100));
  }
  await mkdir(join(dir, 'sub'));
  await writeFile(join(dir, 'sub', 'deep.tif'), Buffer.alloc(8));
  await expect.poll(() => names(seen, dir), { timeout: 10_000 }).toEqual(['slow.tif', 'sub/deep.tif']);
  expect(seen.find((f) => f.path === path)!.size).toBe(600);
  await w.stop();
});
