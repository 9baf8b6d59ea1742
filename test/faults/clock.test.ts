import { existsSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { cli, jsonLines } from '../helpers.js';
import { DaemonProcess, until } from '../station.js';
import { auditRows, capture, countLoss, makeStation, report, sleep, brokerAndWitness, cleanupsAfterEach, delivered, inversions } from './rig.js';

/**
 * Fault 8: the wall clock jumps (an NTP correction) while the daemon runs: back one hour, then
 * forward two. libfaketime (Debian `faketime`) shifts the daemon's CLOCK_REALTIME only, read
 * from a file on every call, the way a clock step looks to a process; the monotonic clock that
 * timers use stays real, as it does under a real step.
 */

const LIB = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1'].find((p) => existsSync(p));

const cleanups = cleanupsAfterEach();

it.skipIf(!LIB)('a clock jump backwards and forwards: seq order, one row per capture, every verdict, audit queries intact', async () => {
  const { port, witness } = await brokerAndWitness(cleanups);
  const station = makeStation({ port, settleMs: 200 });
  const offset = join(station.root, 'faketime');
  writeFileSync(offset, '+0\n');
  const daemon = new DaemonProcess(station.config, {
    LD_PRELOAD: LIB, FAKETIME_TIMESTAMP_FILE: offset, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1', NO_FAKE_STAT: '1',
  });
  cleanups.push(() => daemon.stop('SIGKILL'));
  daemon.start();
  await daemon.waitFor(/watching the capture folder/);
  const files: string[] = [];
  const drop = async (phase: string, n: number, seed: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      const path = join(station.captures, `${phase}-${String(i).padStart(2, '0')}.tif`);
      await writeFile(path, capture(seed + i));
      files.push(path);
      await sleep(100);
    }
  };
  await drop('a-before', 10, 90_000);
  await until(() => auditRows(station.db).length === 10, 20_000, 'rows before the jump');
  // one capture cut short: its incomplete-capture grace (a 2 s deadline) straddles the jump
  await writeFile(join(station.captures, 'b-cut.tif'), capture(90_050).subarray(0, 5000));
  files.push(join(station.captures, 'b-cut.tif'));
  await daemon.waitFor(/capture looks incomplete/);
  writeFileSync(offset, '-3600\n'); // back one hour
  await drop('c-after-back', 10, 90_100);
  await until(() => auditRows(station.db).length === 21, 30_000, 'rows after the jump back');
  writeFileSync(offset, '+3600\n'); // forward two hours from there
  await drop('d-after-forward', 10, 90_200);
  await until(() => delivered(station.db, 31, witness), 30_000, 'all rows published and received');
  await sleep(1000);
  const loss = countLoss(station.db, files, witness);
  const rows = auditRows(station.db);
  const backwards = rows.filter((r, i) => i > 0 && r.scored_at < rows[i - 1].scored_at).length;
  const index = new Map(files.map((f, i) => [f, i]));
  const arrival = rows.filter((r) => !r.file_path.endsWith('b-cut.tif')).map((r) => index.get(r.file_path)!); // the cut one waits its grace
  const listed = jsonLines<{ seq: number }>(cli(['audit', 'list', '--db', station.db, '--json', '--limit', '100']).stdout).map((r) => r.seq);
  const cut = rows.find((r) => r.file_path.endsWith('b-cut.tif'));
  report('8 clock jump', {
    jumps: ['-1 h', '+1 h'], scored_at_going_backwards: backwards,
    seq_strictly_increasing: rows.every((r, i) => i === 0 || r.seq > rows[i - 1].seq),
    arrival_order_inversions: inversions(arrival),
    cut_capture: cut ? cut.reason : null, audit_list_rows: listed.length, ...loss,
  });
  expect(backwards).toBeGreaterThan(0); // the jump really reached the daemon
  expect(loss.not_exactly_one_row).toBe(0);
  expect(loss.verdicts_missing_at_subscriber).toBe(0);
  expect(loss.seq_order_violations).toBe(0);
  expect(inversions(arrival)).toBe(0);
  expect(cut?.reason).toBe('TIFF_TRUNCATED'); // its 2 s grace did not turn into an hour
  expect([...listed].sort((a, b) => b - a)).toEqual(listed);
  expect(listed).toHaveLength(31);
  expect(await daemon.stop()).toBe(0);
});
