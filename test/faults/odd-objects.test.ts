import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { DaemonProcess, until } from '../station.js';
import { auditRows, brokerAndWitness, capture, cleanupsAfterEach, makeStation, report, sleep } from './rig.js';

/**
 * Fault 10: objects in the capture folder that are not captures and cannot be read — a FIFO, a
 * link out of the folder, a dangling link — are recorded once each (one row, one ERROR verdict)
 * until they change, however often the folder is rescanned and the daemon restarted; a folder
 * named like a capture is a folder, watched inside and never recorded.
 */

const cleanups = cleanupsAfterEach();

it('a FIFO, a folder named .tif, a link to /etc/passwd and a dangling link: one row each (none for the folder) over 30 s of 1 s rescans and 3 restarts', async () => {
  const { port, witness } = await brokerAndWitness(cleanups);
  const station = makeStation({ port, settleMs: 200, extra: '' });
  const { readFileSync, writeFileSync } = await import('node:fs');
  writeFileSync(station.config, readFileSync(station.config, 'utf8').replace('  settle_ms: 200\n', '  settle_ms: 200\n  rescan_s: 1\n'));
  const c = station.captures;
  execFileSync('mkfifo', [join(c, 'fifo.tif')]);
  mkdirSync(join(c, 'dir.tif'));
  symlinkSync('/etc/passwd', join(c, 'passwd.tif'));
  symlinkSync(join(c, 'nowhere.tif'), join(c, 'dangling.tif'));
  const want = new Map([['fifo.tif', 'FILE_UNREADABLE'], ['passwd.tif', 'FILE_OUTSIDE_CAPTURE_DIR'], ['dangling.tif', 'FILE_UNREADABLE']]);

  const daemon = new DaemonProcess(station.config);
  cleanups.push(() => daemon.stop('SIGKILL'));
  const started = Date.now();
  daemon.start();
  await daemon.waitFor(/watching the capture folder/);
  await until(() => auditRows(station.db).length >= 3, 20_000, 'three error rows');
  // a capture inside the folder named like one is found and scored
  await writeFile(join(c, 'dir.tif', 'inside.tif'), capture(91_000));
  await until(() => auditRows(station.db).some((r) => r.file_path.endsWith('dir.tif/inside.tif')), 20_000, 'the capture inside dir.tif');
  let restarts = 0;
  while (Date.now() - started < 30_000) {
    await sleep(7_000);
    if (restarts < 3) {
      expect(await daemon.stop()).toBe(0);
      daemon.output = '';
      daemon.start();
      await daemon.waitFor(/watching the capture folder/);
      restarts++;
    }
  }
  await sleep(2_500); // two more rescans
  const rows = auditRows(station.db);
  const name = (p: string): string => p.slice(c.length + 1);
  const perObject = Object.fromEntries([...want.keys(), 'dir.tif'].map((n) => [n, rows.filter((r) => name(r.file_path) === n).map((r) => r.reason)]));
  const verdicts = witness.verdicts();
  const verdictsPer = Object.fromEntries([...want.keys(), 'dir.tif'].map((n) => [n, new Set(verdicts.filter((v) => v.file.endsWith(`/${n}`)).map((v) => v.id)).size]));
  report('10 odd objects across rescans and restarts', {
    seconds: Math.round((Date.now() - started) / 1000), rescan_s: 1, restarts, rows: rows.length, per_object: perObject, verdict_ids_at_subscriber: verdictsPer,
  });
  expect(restarts).toBe(3);
  for (const [n, code] of want) {
    expect(perObject[n], n).toEqual([code]);
    expect(verdictsPer[n], n).toBe(1);
  }
  expect(perObject['dir.tif']).toEqual([]);
  expect(verdictsPer['dir.tif']).toBe(0);
  expect(rows.filter((r) => name(r.file_path) === 'dir.tif/inside.tif').map((r) => r.verdict)).not.toContain('error');
  expect(rows.length).toBe(4);
}, 90_000);
