import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Sqlite from '../../src/record/sqlite.js';
import { expect, it } from 'vitest';
import { fsPath, nameFromBytes } from '../../src/capture/names.js';
import { writeMalformedSet } from '../tools/malformed.js';
import { DaemonProcess, until } from '../station.js';
import { auditRows, capture, makeStation, report, sleep, brokerAndWitness, cleanupsAfterEach } from './rig.js';

/**
 * Fault 6: hostile and odd entries in the capture folder. Each ends as a scored capture or an
 * `error` verdict with the expected code; the daemon neither crashes, hangs, nor follows a link
 * out of the capture folder.
 */

const cleanups = cleanupsAfterEach();

it('malformed TIFFs, links out and to /dev/zero, FIFOs, folders named .tif, growing empty files, non-UTF-8 names, files deleted before decoding', async () => {
  const { port, witness } = await brokerAndWitness(cleanups);
  const station = makeStation({ port, settleMs: 200 }); // incomplete_grace_ms: 2000
  const c = station.captures;
  const expected = new Map<string, string>(); // path → 'scored' or an error code

  for (const k of writeMalformedSet(join(c, 'malformed'))) {
    // a-directory.tif is a folder here: never a capture (the CLI given it by name reports FILE_UNREADABLE)
    if (k.file !== 'does-not-exist.tif') expected.set(join(c, 'malformed', k.file), k.file === 'a-directory.tif' ? 'none' : k.expect);
  }
  const outside = join(station.root, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret.tif'), capture(80_000));
  symlinkSync(join(outside, 'secret.tif'), join(c, 'link-out.tif'));
  expected.set(join(c, 'link-out.tif'), 'FILE_OUTSIDE_CAPTURE_DIR');
  symlinkSync('/dev/zero', join(c, 'dev-zero.tif'));
  expected.set(join(c, 'dev-zero.tif'), 'FILE_OUTSIDE_CAPTURE_DIR');
  symlinkSync(outside, join(c, 'linked-folder')); // a link to a folder outside: not followed
  writeFileSync(join(c, 'real.tif'), capture(80_001));
  expected.set(join(c, 'real.tif'), 'scored');
  symlinkSync(join(c, 'real.tif'), join(c, 'link-in.tif'));
  expected.set(join(c, 'link-in.tif'), 'scored');
  symlinkSync('loop.tif', join(c, 'loop.tif'));
  expected.set(join(c, 'loop.tif'), 'FILE_UNREADABLE');
  symlinkSync(join(c, 'nowhere.tif'), join(c, 'dangling.tif'));
  expected.set(join(c, 'dangling.tif'), 'FILE_UNREADABLE');
  execFileSync('mkfifo', [join(c, 'pipe.tif')]);
  expected.set(join(c, 'pipe.tif'), 'FILE_UNREADABLE');
  mkdirSync(join(c, 'folder.tif'));
  expected.set(join(c, 'folder.tif'), 'none'); // a folder is never a capture, whatever its name
  execFileSync('truncate', ['-s', '10G', join(c, 'sparse-10g.tif')]);
  expected.set(join(c, 'sparse-10g.tif'), 'TIFF_TOO_LARGE');
  // names that are not UTF-8: ISO-8859-1 "Elektrode_ä", and stray bytes
  const latin1 = Buffer.concat([Buffer.from(`${c}/Elektrode_`), Buffer.of(0xe4), Buffer.from('.tif')]);
  writeFileSync(latin1, capture(80_002));
  expected.set(nameFromBytes(latin1), 'scored');
  const stray = Buffer.concat([Buffer.from(`${c}/`), Buffer.of(0xff, 0xfe, 0x80), Buffer.from('.tif')]);
  writeFileSync(stray, 'not a tiff at all');
  expected.set(nameFromBytes(stray), 'TIFF_NOT_TIFF');

  const daemon = new DaemonProcess(station.config);
  cleanups.push(() => daemon.stop('SIGKILL'));
  daemon.start();
  await daemon.waitFor(/watching the capture folder/);

  // empty files that grow: within incomplete_grace_ms (one scored row), and after it (an error row, then a scored one)
  const soon = join(c, 'grows-soon.tif');
  const late = join(c, 'grows-late.tif');
  writeFileSync(soon, '');
  writeFileSync(late, '');
  await sleep(1000);
  await writeFile(soon, capture(80_003));
  expected.set(soon, 'scored');
  // files deleted between detection and decoding: queued behind a pile of large captures
  // (encoded first, then written at once: written one by one as they were encoded, the daemon
  // kept up with the writer, no pile formed, and the vanishing files were read the moment they
  // were queued)
  const pile = Array.from({ length: 16 }, (_, i) => capture(80_100 + i, 1200, 2000));
  await Promise.all(pile.map((bytes, i) => writeFile(join(c, `pile-${i}.tif`), bytes)));
  const vanishing = Array.from({ length: 10 }, (_, i) => join(c, `vanishing-${i}.tif`));
  // The queue is ordered by mtime: dated an hour ahead, these wait behind the whole pile however
  // fast it is scored (with small files the loop could take each as it was queued, before the
  // freeze below landed: one CI run saw all of them read in time)
  const { utimesSync } = await import('node:fs');
  for (const [i, v] of vanishing.entries()) {
    await writeFile(v, capture(80_200 + i));
    const later = Date.now() / 1000 + 3600 + i;
    utimesSync(v, later, later);
  }
  // The moment one is queued the daemon is frozen (SIGSTOP), every queued one deleted, and it goes on.
  const deletedWhileQueued: string[] = [];
  const db = new Sqlite(station.db, { readonly: true });
  const inQueue = db.prepare('SELECT file_path FROM queue');
  const deadline = Date.now() + 30_000;
  const audited = db.prepare("SELECT count(*) AS n FROM inspections WHERE file_path LIKE '%/vanishing-%'");
  const settled = (): boolean => deletedWhileQueued.length + (audited.get() as { n: number }).n >= vanishing.length;
  while (!settled() && Date.now() < deadline) {
    const q = new Set((inQueue.all() as Array<{ file_path: string }>).map((r) => r.file_path));
    const hit = vanishing.filter((v) => q.has(v) && !deletedWhileQueued.includes(v));
    if (hit.length) {
      daemon.proc!.kill('SIGSTOP');
      const now = new Set((inQueue.all() as Array<{ file_path: string }>).map((r) => r.file_path));
      for (const v of vanishing.filter((x) => now.has(x) && !deletedWhileQueued.includes(x))) {
        unlinkSync(v);
        deletedWhileQueued.push(v);
      }
      daemon.proc!.kill('SIGCONT');
    }
    await sleep(2);
  }
  db.close();
  await until(() => auditRows(station.db).some((r) => r.file_path === late), 20_000, 'the late-growing file recorded while empty');
  await writeFile(late, capture(80_004));
  // still answering: a plain capture afterwards is scored
  await sleep(500);
  await writeFile(join(c, 'final.tif'), capture(80_005));
  expected.set(join(c, 'final.tif'), 'scored');
  await until(() => auditRows(station.db).filter((r) => r.file_path === late).length === 2
    && auditRows(station.db).some((r) => r.file_path.endsWith('final.tif')), 30_000, 'the late file scored and final.tif');
  await sleep(1500);

  const rows = auditRows(station.db);
  const outcome = (r: { verdict: string; reason: string }): string => (r.verdict === 'error' ? r.reason : 'scored');
  const wrong: string[] = [];
  for (const [path, want] of expected) {
    const mine = rows.filter((r) => r.file_path === path);
    if (want === 'none' ? mine.length !== 0 : mine.length !== 1 || outcome(mine[0]) !== want) wrong.push(`${path}: ${mine.map(outcome).join(',') || 'no row'} (want ${want})`);
  }
  const lateRows = rows.filter((r) => r.file_path === late).map(outcome);
  const vanished = vanishing.map((v) => rows.filter((r) => r.file_path === v).map(outcome));
  const followedOut = rows.filter((r) => r.file_path.includes('linked-folder') || r.file_path.startsWith(outside));
  const seen = new Set(witness.verdicts().map((v) => v.id));
  const alive = daemon.proc!.exitCode === null;
  report('6 hostile and odd files', {
    entries: expected.size + 1 + vanishing.length, rows: rows.length, wrong_outcome: wrong.length,
    vanishing: vanishing.length, deleted_while_queued: deletedWhileQueued.length,
    vanishing_outcomes: vanished.map((v) => v.join(',')), grows_late_rows: lateRows,
    rows_through_links_out: followedOut.length, verdicts_missing_at_subscriber: rows.filter((r) => !seen.has(r.id)).length, daemon_alive: alive,
    non_utf8_scored_path: JSON.stringify(rows.find((r) => r.file_path === nameFromBytes(latin1))?.file_path ?? null),
  });
  expect(wrong).toEqual([]);
  expect(lateRows).toEqual(['TIFF_TRUNCATED', 'scored']);
  expect(vanished.every((v) => v.length === 1 && ['scored', 'FILE_UNREADABLE'].includes(v[0]))).toBe(true);
  expect(deletedWhileQueued.length).toBeGreaterThan(0);
  // deleted while queued: an error row, unless the capture loop had already read it (the queue
  // row stays until the verdict is recorded, and the next capture is read during inference)
  expect(vanished.filter((v) => v[0] === 'FILE_UNREADABLE').length).toBeGreaterThan(0);
  expect(followedOut).toEqual([]);
  expect(rows.filter((r) => !seen.has(r.id))).toEqual([]);
  expect(alive).toBe(true);
  // the non-UTF-8 name maps back to the very bytes on disk
  expect(Buffer.compare(fsPath(nameFromBytes(latin1)) as Buffer, latin1)).toBe(0);
  expect(await daemon.stop()).toBe(0);
});
