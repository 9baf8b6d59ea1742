import { rename, rm, mkdir, writeFile } from 'node:fs/promises';
import { readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { DaemonProcess, Subscriber, until } from '../station.js';
import { auditRows, capture, countLoss, makeStation, report, rssMiB, sleep, SOAK, WitnessSub, brokerAndWitness, cleanupsAfterEach, delivered, inversions } from './rig.js';

/**
 * Fault 5: a backlog waiting at start plus a sustained burst faster than the station scores —
 * memory flat, queue depth on the status topic, everything processed once and in arrival order.
 * Fault 4: the capture folder disappears and comes back (deleted and re-created; renamed away
 * and back, as an unmounted share looks).
 */

const BACKLOG = 1000;
const BURST = SOAK ? 3000 : 500;

const cleanups = cleanupsAfterEach();

async function rig(): Promise<{ station: ReturnType<typeof makeStation>; witness: WitnessSub; status: Subscriber; daemon: DaemonProcess }> {
  const { port, witness } = await brokerAndWitness(cleanups);
  const status = new Subscriber(port);
  await status.start();
  cleanups.push(() => status.stop());
  const station = makeStation({ port, settleMs: 200, extra: '  status_interval_s: 1\n' });
  const daemon = new DaemonProcess(station.config);
  cleanups.push(() => daemon.stop('SIGKILL'));
  return { station, witness, status, daemon };
}

it(`${BACKLOG} files waiting at start, then ${BURST} more at 100/s: memory flat, queue depth reported, all once and in order`, async () => {
  const { station, witness, status, daemon } = await rig();
  const files: string[] = [];
  const t0 = Date.now() / 1000 - 3600;
  for (let i = 0; i < BACKLOG; i++) {
    const path = join(station.captures, `b-${String(i).padStart(5, '0')}.tif`);
    await writeFile(path, capture(50_000 + i, 160, 300));
    utimesSync(path, t0 + i, t0 + i); // arrival order = mtime order, one second apart
    files.push(path);
  }
  daemon.start();
  await daemon.waitFor(/watching the capture folder/, 60_000);
  const pid = daemon.proc!.pid!;
  // Each sample pairs the daemon's RSS with how many verdicts the witness had by then, so memory
  // can be compared between stretches of the run once the sessions and pools have warmed up.
  const rss: Array<{ mib: number; done: number }> = [];
  const sampler = setInterval(() => { const r = rssMiB(pid); if (r !== null) rss.push({ mib: r, done: witness.count() }); }, 250);
  cleanups.push(async () => clearInterval(sampler));
  const readyRss = rssMiB(pid)!;
  const burstStart = Date.now();
  for (let i = 0; i < BURST; i++) {
    const path = join(station.captures, `s-${String(i).padStart(5, '0')}.tif`);
    await writeFile(path, capture(60_000 + i, 160, 300));
    files.push(path);
    await sleep(Math.max(0, burstStart + (i + 1) * 10 - Date.now()));
  }
  const burstS = (Date.now() - burstStart) / 1000;
  const rowsAtBurstEnd = auditRows(station.db).length;
  await until(() => delivered(station.db, files.length, witness), 300_000, 'the backlog and the burst scored and delivered');
  const doneS = (Date.now() - burstStart) / 1000;
  clearInterval(sampler);
  await sleep(1500);
  const loss = countLoss(station.db, files, witness);
  const rows = auditRows(station.db);
  const index = new Map(files.map((f, i) => [f, i]));
  const order = rows.map((r) => index.get(r.file_path)!);
  const queueSeen = status.status.map((s) => s.queue ?? 0);
  const peak = Math.max(...rss.map((r) => r.mib));
  // Per-capture growth shows as memory rising in every stretch of the run: the verdicts after the
  // first 100 (warm-up) fall into three stretches, early, middle and late, and each stretch's
  // median RSS is compared with the one before. Keeping ~100 KB a capture (each file is 96 KB)
  // adds ~44 MiB to both steps (~467 captures a stretch). What is no growth moves one step only,
  // or both by less: the garbage collector lets the heap grow and shrink by up to ~30 MiB between
  // samples (Node 24 under load), SQLite's cache fills once. So the smaller step of the medians is
  // asserted. Measured: min step 0–11 MiB on Node 20 and 24 (loaded); an injected 96 KB leak per
  // capture (Recorder.record keeping a buffer) failed it. With chokidar's watch on every file the
  // old early-to-late check grew by 62 MiB over the soak.
  const stretch = (from: number, to: number): number[] => rss.filter((r) => r.done >= from && r.done < to).map((r) => r.mib);
  const third = (files.length - 100) / 3;
  const samples = [stretch(100, 100 + third), stretch(100 + third, 100 + 2 * third), stretch(100 + 2 * third, Infinity)];
  const [early, middle, late] = samples.map((x) => [...x].sort((a, b) => a - b)[x.length >> 1]);
  report('5 backlog and sustained burst', {
    backlog: BACKLOG, burst: BURST, burst_rate_per_s: Number((BURST / burstS).toFixed(1)),
    rows_when_burst_ended: rowsAtBurstEnd, all_done_s: Number(doneS.toFixed(1)),
    scoring_rate_per_s: Number((files.length / doneS).toFixed(1)),
    max_queue_on_status_topic: Math.max(...queueSeen), last_queue_on_status_topic: queueSeen.at(-1),
    rss_mib_ready: Math.round(readyRss), rss_mib_peak: Math.round(peak), rss_mib_median_early_middle_late: [early, middle, late].map(Math.round), rss_mib_max_early_middle_late: samples.map((x) => Math.round(Math.max(...x))),
    arrival_order_inversions: inversions(order), ...loss,
  });
  expect(loss.not_exactly_one_row).toBe(0);
  expect(loss.verdicts_missing_at_subscriber).toBe(0);
  expect(inversions(order)).toBe(0);
  expect(rowsAtBurstEnd).toBeLessThan(files.length); // the burst really outran the scoring
  expect(Math.max(...queueSeen)).toBeGreaterThan(50);
  expect(Math.min(...samples.map((x) => x.length))).toBeGreaterThan(1); // 4/s
  expect(Math.min(middle - early, late - middle)).toBeLessThan(24); // flat: no per-capture growth
  expect(peak - readyRss).toBeLessThan(400); // and warm-up (sessions, pools, the queue of 1000) bounded
});

it('the capture folder is deleted and re-created, then renamed away and back: nothing dropped meanwhile is missed', async () => {
  const { station, witness, daemon } = await rig();
  writeFileSync(station.config, readFileSync(station.config, 'utf8').replace('  settle_ms: 200\n', '  settle_ms: 200\n  rescan_s: 1\n'));
  daemon.start();
  await daemon.waitFor(/watching the capture folder/);
  const files: string[] = [];
  const drop = async (name: string, seed: number): Promise<void> => {
    const path = join(station.captures, name);
    await writeFile(path, capture(seed));
    files.push(path);
  };
  await drop('before.tif', 70_000);
  await until(() => auditRows(station.db).length === 1, 20_000, 'first row');
  // deleted and re-created
  await rm(station.captures, { recursive: true });
  const goneAt = Date.now();
  await daemon.waitFor(/capture folder .* is missing/, 10_000);
  const missingDetectedMs = Date.now() - goneAt;
  await mkdir(station.captures);
  await drop('recreated-1.tif', 70_001);
  await daemon.waitFor(/capture folder .* is back/, 10_000);
  await drop('recreated-2.tif', 70_002);
  await until(() => auditRows(station.db).length === 3, 20_000, 'rows for the re-created folder');
  // renamed away (an unmounted share looks like this to us) and back, with captures meanwhile
  const away = `${station.captures}.away`;
  await rename(station.captures, away);
  await daemon.waitFor(/(missing[\s\S]*){2}/, 10_000);
  await writeFile(join(away, 'while-away.tif'), capture(70_003));
  await rename(away, station.captures);
  files.push(join(station.captures, 'while-away.tif'));
  await daemon.waitFor(/(is back[\s\S]*){2}/, 10_000);
  await drop('after.tif', 70_004);
  await until(() => auditRows(station.db).length >= 5 && new Set(witness.verdicts().map((v) => v.id)).size >= 5, 30_000, 'five verdicts');
  await sleep(1500);
  const loss = countLoss(station.db, files, witness);
  report('4 capture folder disappears', { rescan_s: 1, missing_detected_ms: missingDetectedMs, ...loss });
  expect(loss.not_exactly_one_row).toBe(0);
  expect(loss.verdicts_missing_at_subscriber).toBe(0);
});
