import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Aedes } from 'aedes';
import * as ort from 'onnxruntime-node';
import pino from 'pino';
import { loadBundle } from '../model/bundle.js';
import { defaultDemoDir, ensureDemoModel } from '../model/demo/demo-model.js';
import { openDatabaseReadOnly } from '../record/database.js';
import { parseConfig } from '../service/config.js';
import { Daemon } from '../service/daemon.js';
import { SystemdNotifier } from '../service/systemd.js';
import { synthElectrode } from '../tools/synth.js';
import { encodeTiff16 } from '../tools/tiff-writer.js';

/**
 * `npm run bench:pipeline [-- N] [--nice K] [--spin]`: a burst of N captures (default 100) through the whole daemon
 * (watcher, SQLite, MQTT to an embedded broker, the full demo model on the CPU), against a bare
 * `session.run` rate measured in the same process first. Reports the rate ratio, peak RSS, the
 * event loop's worst delay during the burst, and idle CPU afterwards.
 */
async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const niceAt = args.indexOf('--nice');
  const niceness = niceAt >= 0 ? Number(args[niceAt + 1]) : undefined;
  const spinning = args.includes('--spin');
  const n = Number(args.find((a, i) => /^\d+$/.test(a) && (niceAt < 0 || i !== niceAt + 1))) || 100;
  const root = await mkdtemp(join(tmpdir(), 'xray-qc-bench-pipeline-'));
  const model = await ensureDemoModel(defaultDemoDir());
  const m = (await loadBundle(model)).manifest;
  const shape = [1, 3, m.input.height, m.input.width];

  // Bare inference on this machine, same model, same process: measured before and after the
  // burst (the machine is shared; the mean of the two is the reference). Each run's time, after
  // a warm-up run; `pauseMs` idle before each (as between single captures).
  const bareRuns = async (runs: number, pauseMs = 0): Promise<number[]> => {
    const bare = await ort.InferenceSession.create(join(model, 'model.onnx'), { executionProviders: ['cpu'], graphOptimizationLevel: 'all' });
    const feeds = { [m.input.name]: new ort.Tensor('float32', new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.1), shape) };
    await bare.run(feeds);
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
      const t0 = performance.now();
      await bare.run(feeds);
      times.push(performance.now() - t0);
    }
    await bare.release();
    return times;
  };
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const bareBefore = mean(await bareRuns(10));

  const broker = await Aedes.createBroker();
  const server = createServer(broker.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const captures = join(root, 'captures');
  await mkdir(captures);
  const config = parseConfig({
    station_id: 'bench', capture: { dir: captures, settle_ms: 100, ...(niceness !== undefined ? { prepare_niceness: niceness } : {}) }, model: { dir: model, intra_op_spinning: spinning },
    database: { path: join(root, 'audit.db') }, mqtt: { url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`, password_env: null },
  }, join(root, 'config.yaml'), {});
  const daemon = new Daemon(config, pino({ level: 'silent' }), new SystemdNotifier(pino({ level: 'silent' }), {}), 'bench');
  await daemon.start();
  // all captures written before the clock starts: the daemon is never starved
  const files = [];
  for (let i = 0; i < n; i++) {
    const img = synthElectrode(5000 + i, i % 5 === 0 ? 'bubble' : null, { width: 1145, height: 2072 });
    files.push({ name: `c-${String(i).padStart(4, '0')}.tif`, bytes: encodeTiff16(img.width, img.height, img.data, { compression: 'deflate', predictor: true }) });
  }
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  // Where the long stalls happen (XRAY_QC_BENCH_STALLS=1): a 10 ms ticker that reports late ticks.
  const stalls: string[] = [];
  let last = performance.now();
  const ticker = process.env.XRAY_QC_BENCH_STALLS ? setInterval(() => {
    const now = performance.now();
    if (now - last > 60) stalls.push(`${((now - t) / 1000).toFixed(2)} s: ${(now - last).toFixed(0)} ms`);
    last = now;
  }, 10) : null;
  const cpu0 = process.cpuUsage();
  const threads0 = threadTimes();
  let t = performance.now();
  for (const f of files) await writeFile(join(captures, f.name), f.bytes);
  const db = openDatabaseReadOnly(config.database.path);
  const count = db.prepare('SELECT count(*) AS n, sum(published_at IS NOT NULL) AS p FROM inspections');
  while ((count.get() as { p: number | null }).p !== n) await new Promise((r) => setTimeout(r, 50));
  const burstMs = performance.now() - t;
  lag.disable();
  if (ticker) {
    clearInterval(ticker);
    console.log(`stalls > 60 ms: ${stalls.join('; ') || 'none'}`);
  }
  const cpuBurst = process.cpuUsage(cpu0);
  const threads1 = threadTimes();
  // single captures, queue empty: written → published, one at a time
  const single: number[] = [];
  for (let i = 0; i < 5; i++) {
    const img = synthElectrode(9000 + i, null, { width: 1145, height: 2072 });
    const t0 = performance.now();
    await writeFile(join(captures, `single-${i}.tif`), encodeTiff16(img.width, img.height, img.data, { compression: 'deflate', predictor: true }));
    while ((count.get() as { p: number | null }).p !== n + i + 1) await new Promise((r) => setTimeout(r, 5));
    single.push(performance.now() - t0);
  }
  single.sort((a, b) => a - b);
  // the daemon's own capture → verdict time of those (read … inference done: total_ms)
  const singles = db.prepare(`SELECT decode_ms AS d, preprocess_ms AS p, infer_ms AS i, total_ms AS t FROM inspections WHERE file_path LIKE '%single-%'`).all() as Array<{ d: number; p: number; i: number; t: number }>;
  const mid = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const own = singles.map((r) => r.t).sort((a, b) => a - b);
  // and of the burst's captures: inference as the daemon times it (handed to the worker → result back: infer_ms)
  const burstInfer = mid((db.prepare(`SELECT infer_ms AS i FROM inspections WHERE file_path NOT LIKE '%single-%'`).all() as Array<{ i: number }>).map((r) => r.i));
  // idle: nothing queued, 10 s
  const idle0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, 10_000));
  const idle = process.cpuUsage(idle0);
  db.close();
  await daemon.stop('bench done');
  await new Promise<void>((r) => broker.close(() => r()));
  server.close();
  await rm(root, { recursive: true, force: true });

  const bareAfter = mean(await bareRuns(10));
  // The same bare session after pauses like a single capture's (~0.4 s idle before each run):
  // how much of the single-capture figure is inference starting cold.
  const bareCold = [...(await bareRuns(5, 400))].sort((x, y) => x - y)[2];
  const bare = (bareBefore + bareAfter) / 2;
  const perCapture = burstMs / n;
  console.log(`capture.prepare_niceness: ${config.capture.prepare_niceness}, model.intra_op_spinning: ${config.model.intra_op_spinning}`);
  console.log(`| figure | value |\n|---|---|`);
  console.log(`| bare session.run (same model, same process), before / after the burst | ${bareBefore.toFixed(0)} / ${bareAfter.toFixed(0)} ms |`);
  console.log(`| ${n} captures, written → all published (deflate+predictor, 1145×2072) | ${(burstMs / 1000).toFixed(1)} s |`);
  console.log(`| per capture in the burst | ${perCapture.toFixed(0)} ms = ${(perCapture / bare).toFixed(3)}× bare |`);
  console.log(`| rate | ${(1000 / perCapture).toFixed(3)}/s = ${(bare / perCapture).toFixed(3)}× bare rate |`);
  console.log(`| single capture, queue empty: read → verdict (total_ms, median of ${own.length}) | ${own[own.length >> 1].toFixed(0)} ms = ${(own[own.length >> 1] / bare).toFixed(3)}× bare |`);
  console.log(`| single capture: file written → verdict published, incl. the watcher's settle wait (median of 5) | ${single[2].toFixed(0)} ms |`);
  console.log(`| bare session.run after a 0.4 s pause (median of 5) | ${bareCold.toFixed(0)} ms = ${(bareCold / bare).toFixed(3)}× bare |`);
  console.log(`| single capture, medians: read + decode / preprocess / inference (infer_ms) / total | ${mid(singles.map((r) => r.d)).toFixed(0)} / ${mid(singles.map((r) => r.p)).toFixed(0)} / ${mid(singles.map((r) => r.i)).toFixed(0)} / ${mid(own).toFixed(0)} ms |`);
  console.log(`| burst: inference, handed to the worker → result back (infer_ms, median) | ${burstInfer.toFixed(0)} ms = ${(burstInfer / bare).toFixed(3)}× bare |`);
  console.log(`| peak RSS (process) | ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB |`);
  console.log(`| event loop delay during the burst: p99 / max | ${(lag.percentile(99) / 1e6).toFixed(1)} / ${(lag.max / 1e6).toFixed(1)} ms |`);
  console.log(`| process CPU during the burst (all threads) | ${((cpuBurst.user + cpuBurst.system) / 1000 / burstMs * 100).toFixed(1)} % of a core |`);
  console.log(`| idle CPU, empty queue, 10 s | ${((idle.user + idle.system) / 1000 / 10_000 * 100).toFixed(2)} % of a core |`);
  // Where the CPU went during the burst, per thread (the kernel's accounting)
  const perThread = [...threads1].map(([tid, [name, ticks, nice]]) => ({ tid, name, nice, s: (ticks - (threads0.get(tid)?.[1] ?? 0)) / 100 }))
    .filter((x) => x.s >= 0.05).sort((a, b) => b.s - a.s);
  console.log(`\nCPU seconds per thread during the burst (${(burstMs / 1000).toFixed(1)} s; the preparation thread is the one at niceness ${config.capture.prepare_niceness}):`);
  for (const x of perThread) console.log(`  ${x.tid}${x.tid === process.pid ? ' (main: event loop)' : ''} ${x.name}, nice ${x.nice}: ${x.s.toFixed(1)} s`);
}

/** Name, utime + stime (clock ticks) and niceness of every thread of this process. */
function threadTimes(): Map<number, [string, number, number]> {
  const out = new Map<number, [string, number, number]>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), [name, Number(f[11]) + Number(f[12]), Number(f[16])]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
