import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { tempDir } from '../helpers.js';
import { DaemonProcess, notifyListener, Subscriber, until } from '../station.js';
import { auditRows, capture, countLoss, makeStation, report, sleep, brokerAndWitness, cleanupsAfterEach, delivered } from './rig.js';

/**
 * Fault 3: the database's disk fills up. The daemon runs in its own mount namespace (unshare)
 * with a 4 MiB tmpfs on its data folder; the test fills that tmpfs through /proc/PID/root and
 * frees it again. Expected: an error on the status topic and in STATUS=, no lost capture (the
 * files stay and are scored once space returns, each once), and no busy loop meanwhile.
 */

const asRoot = process.getuid?.() === 0;
const UNSHARE = asRoot ? ['unshare', '--mount'] : ['unshare', '--user', '--map-root-user', '--mount'];
const canUnshare = spawnSync(UNSHARE[0], [...UNSHARE.slice(1), 'true']).status === 0;

const cleanups = cleanupsAfterEach();

/** CPU seconds (user + system) a process has used, from /proc/PID/stat. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

it.skipIf(!canUnshare)('the database disk fills up: error reported, nothing lost, no spinning; all scored once space returns', async () => {
  const { port, witness } = await brokerAndWitness(cleanups);
  const status = new Subscriber(port);
  await status.start();
  cleanups.push(() => status.stop());
  const station = makeStation({ port, settleMs: 200, extra: '  status_interval_s: 1\n' });
  const data = join(station.root, 'data');
  mkdirSync(data);
  const notify = await notifyListener(join(station.root, 'notify.sock'), cleanups);
  const daemon = new DaemonProcess(station.config, { NOTIFY_SOCKET: notify.socketPath, WATCHDOG_USEC: '1000000' },
    [...UNSHARE, 'sh', '-c', 'mount -t tmpfs -o size=4m tmpfs "$0" && exec "$@"', data]);
  cleanups.push(() => daemon.stop('SIGKILL'));
  daemon.start();
  await daemon.waitFor(/watching the capture folder/);
  const pid = daemon.proc!.pid!;
  // The database as the daemon's mount namespace sees it. SQLite resolves the /proc/PID/root link
  // (back into our namespace), so each look is a copy of the database and its WAL.
  const inside = `/proc/${pid}/root${station.db}`;
  const copies = tempDir('xray-qc-dbcopy-');
  let n = 0;
  const db = (): string => {
    const copy = join(copies, `${n++}.db`);
    try {
      copyFileSync(inside, copy);
      if (existsSync(`${inside}-wal`)) copyFileSync(`${inside}-wal`, `${copy}-wal`);
    } catch {
      return join(copies, 'missing.db');
    }
    return copy;
  };
  const files: string[] = [];
  const drop = async (from: number, n: number): Promise<void> => {
    for (let i = from; i < from + n; i++) {
      const path = join(station.captures, `cap-${String(i).padStart(3, '0')}.tif`);
      await writeFile(path, capture(40_000 + i));
      files.push(path);
    }
  };
  await drop(0, 5);
  await until(() => auditRows(db()).length === 5, 30_000, 'five rows before the disk fills');

  // Fill the daemon's tmpfs (seen through its mount namespace) to the last byte.
  const filler = `/proc/${pid}/root${data}/filler`;
  spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { stdio: 'ignore' });
  const fullAt = Date.now();
  await drop(5, 20);
  await until(() => status.status.some((s) => s.error), 30_000, 'an error on the status topic');
  await until(() => /STATUS=ERROR /.test(notify.heard), 30_000, 'ERROR in systemd STATUS=');
  const errorOnStatus = status.status.find((s) => s.error)?.error;
  const cpu0 = cpuSeconds(pid);
  await sleep(10_000);
  const cpuPercent = ((cpuSeconds(pid) - cpu0) / 10) * 100;
  const rowsWhileFull = auditRows(db()).length;
  expect(daemon.proc!.exitCode).toBe(null);

  rmSync(filler);
  const freedAt = Date.now();
  await until(() => delivered(db(), 25, witness), 60_000, 'every capture scored and delivered after space returned');
  const recoveredMs = Date.now() - freedAt;
  await until(() => status.status.at(-1)?.state === 'online' && status.status.at(-1)?.error === null, 10_000, 'the error cleared on the status topic');
  await sleep(1000);
  const loss = countLoss(db(), files, witness);
  const stalledEvents = daemon.output.match(/could not (record verdict|queue capture)/g)?.length ?? 0;
  report('3 database disk full', {
    tmpfs_mib: 4, full_for_s: Math.round((freedAt - fullAt) / 1000), rows_while_full: rowsWhileFull, status_error: errorOnStatus,
    daemon_cpu_percent_while_full: Number(cpuPercent.toFixed(1)), retry_log_lines: stalledEvents, recovered_ms: recoveredMs, ...loss,
  });
  expect(rowsWhileFull).toBeLessThan(25);
  expect(cpuPercent).toBeLessThan(20); // a busy retry loop would use a whole core (100 %)
  expect(loss.not_exactly_one_row).toBe(0);
  expect(loss.verdicts_missing_at_subscriber).toBe(0);
});
