import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { utimesSync } from 'node:fs';
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
