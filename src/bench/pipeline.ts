import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
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
 * `npm run bench:pipeline [-- N] [--rounds R] [--nice K] [--spin | --spin-both]`: R rounds (default 3) of a burst
 * of N captures (default 100) through the whole daemon (watcher, SQLite, MQTT to an embedded
 * broker, the full demo model on the CPU), each between two bare `session.run` blocks in the same
 * process, so that every round is compared with the machine's speed at that time (it drifts by
 * up to 5 % here). A block interleaves a session with ORT defaults (the target's reference) and
 * one with the daemon's session options (what is left is the pipeline's own cost). Then
 * event-loop delay in a burst of its own, single captures paired with bare runs, peak RSS, CPU
 * per thread and idle CPU. `--spin-both`: two daemons, ONNX Runtime's intra-op spinning off and
 * on, take turns in every round (order alternating), each burst between bare blocks; the later
 * figures are the first daemon's (spinning off).
 */
async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const valueOf = (flag: string): number | undefined => (args.includes(flag) ? Number(args[args.indexOf(flag) + 1]) : undefined);
  const niceness = valueOf('--nice');
  const rounds = valueOf('--rounds') ?? 3;
  const spinSettings = args.includes('--spin-both') ? [false, true] : [args.includes('--spin')];
  const n = Number(args.find((a, i) => /^\d+$/.test(a) && !['--nice', '--rounds'].includes(args[i - 1]))) || 100;
  const root = await mkdtemp(join(tmpdir(), 'xray-qc-bench-pipeline-'));
  const model = await ensureDemoModel(defaultDemoDir());
  const m = (await loadBundle(model)).manifest;
  const shape = [1, 3, m.input.height, m.input.width];

  // Bare inference, same model, same process: ORT defaults, or the session options of a daemon
  // with intra-op spinning off (`spinningOff`; with it on, the daemon's options are the defaults).
  const session = (spinningOff: boolean): Promise<ort.InferenceSession> => ort.InferenceSession.create(join(model, 'model.onnx'), {
    executionProviders: ['cpu'], graphOptimizationLevel: 'all',
    ...(spinningOff ? { extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } } } : {}),
  });
  const feeds = { [m.input.name]: new ort.Tensor('float32', new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.1), shape) };
  /**
   * `runs` timed runs of each session after one warm-up run each, interleaved 0 1 1 0 0 1 1 0 …
   * (neither goes first more often), `pauseMs` idle before each (as between single captures);
   * releases the sessions.
   */
  const timeBare = async (sessions: ort.InferenceSession[], runs: number, pauseMs = 0): Promise<number[][]> => {
    for (const s of sessions) await s.run(feeds);
    const times: number[][] = sessions.map(() => []);
    for (let i = 0; i < sessions.length * runs; i++) {
      const which = (i + (i >> 1)) % sessions.length;
      if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
      const t0 = performance.now();
      await sessions[which].run(feeds);
      times[which].push(performance.now() - t0);
    }
    for (const s of sessions) await s.release();
    return times;
  };
  /** A block of bare runs with ORT defaults interleaved with as many with spinning off: their means. */
  const bareBlock = async (runs: number): Promise<{ defaults: number; spinningOff: number }> => {
    const [defaults, spinningOff] = await timeBare([await session(false), await session(true)], runs);
    return { defaults: mean(defaults), spinningOff: mean(spinningOff) };
  };

  const broker = await Aedes.createBroker();
  const server = createServer(broker.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  /** One daemon with its own capture folder, database and station id (its MQTT client id: two daemons with one id would take turns being connected); `done`: verdicts expected so far. */
  const station = async (spinning: boolean, dir: string) => {
    await mkdir(join(dir, 'captures'), { recursive: true });
    await mkdir(join(dir, 'staging'));
    const config = parseConfig({
      station_id: `bench-${spinning ? 'spin' : 'nospin'}`, capture: { dir: join(dir, 'captures'), settle_ms: 100, ...(niceness !== undefined ? { prepare_niceness: niceness } : {}) }, model: { dir: model, intra_op_spinning: spinning },
      database: { path: join(dir, 'audit.db') }, mqtt: { url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`, password_env: null },
    }, join(dir, 'config.yaml'), {});
    const daemon = new Daemon(config, pino({ level: 'silent' }), new SystemdNotifier(pino({ level: 'silent' }), {}), 'bench');
    await daemon.start();
    return { spinning, config, daemon, dir, db: openDatabaseReadOnly(config.database.path), done: 0 };
  };
  type Station = Awaited<ReturnType<typeof station>>;
  const stations: Station[] = [];
  for (const [i, spinning] of spinSettings.entries()) stations.push(await station(spinning, join(root, `station-${i}`)));
  const config = stations[0].config;
  const files: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const img = synthElectrode(5000 + i, i % 5 === 0 ? 'bubble' : null, { width: 1145, height: 2072 });
    files.push(encodeTiff16(img.width, img.height, img.data, { compression: 'deflate', predictor: true }));
  }
  const untilPublished = async (st: Station, pollMs: number): Promise<void> => {
    const published = st.db.prepare('SELECT sum(published_at IS NOT NULL) AS p FROM inspections');
    while ((published.get() as { p: number | null }).p !== st.done) await new Promise((r) => setTimeout(r, pollMs));
  };

  const results: Array<{ station: number; before: number; after: number; burstMs: number; sameBefore: number; sameAfter: number }> = [];
  let cpuMs = 0;
  let burstMsAll = 0;
  const threadCpu = new Map<number, { name: string; nice: number; s: number }>();
  /**
   * One burst of `count` captures into a station, renamed in at once; resolves with its length in
   * ms: when its last verdict was acknowledged, from the database (ms resolution). The bench
   * polls slowly, so that its own polling does not compete with inference.
   */
  const burst = async (st: Station, tag: string, count: number): Promise<number> => {
    // The captures are written before the clock starts and renamed into the capture folder at
    // once (as a station that writes, then renames): the burst times the daemon, not the writer.
    const staging = join(st.dir, 'staging');
    for (let i = 0; i < count; i++) await writeFile(join(staging, `${tag}-c-${String(i).padStart(4, '0')}.tif`), files[i]);
    const t0 = Date.now();
    for (const name of await readdir(staging)) await rename(join(staging, name), join(st.config.capture.dir, name));
    st.done += count;
    await untilPublished(st, 500);
    return Date.parse((st.db.prepare('SELECT max(published_at) AS t FROM inspections').get() as { t: string }).t) - t0;
  };
  let bareNext = await bareBlock(10);
  for (let round = 0; round < rounds; round++) for (let k = 0; k < stations.length; k++) {
    const which = round % 2 === 0 ? k : stations.length - 1 - k; // the order alternates
    const cpu0 = process.cpuUsage();
    const threads0 = threadTimes();
    const burstMs = await burst(stations[which], `r${round}`, n);
    const cpu = process.cpuUsage(cpu0);
    for (const [tid, [name, ticks, nice]] of threadTimes()) {
      const x = threadCpu.get(tid) ?? { name, nice, s: 0 };
      x.s += (ticks - (threads0.get(tid)?.[1] ?? 0)) / 100;
      threadCpu.set(tid, x);
    }
    cpuMs += (cpu.user + cpu.system) / 1000;
    burstMsAll += burstMs;
    const before = bareNext;
    bareNext = await bareBlock(10);
    const same = (b: typeof before): number => (stations[which].spinning ? b.defaults : b.spinningOff);
    results.push({ station: which, before: before.defaults, after: bareNext.defaults, sameBefore: same(before), sameAfter: same(bareNext), burstMs });
  }
  // Event-loop delay in a burst of its own: sampling it every 10 ms costs the main thread ~6 ms
  // of CPU per capture, which would count against the daemon in the rounds above.
  const lagN = Math.min(n, 30);
  const lagHist = monitorEventLoopDelay({ resolution: 10 });
  lagHist.enable();
  // Where the long stalls happen (XRAY_QC_BENCH_STALLS=1): a 10 ms ticker that reports late ticks.
  const stalls: string[] = [];
  const lagT = performance.now();
  let last = lagT;
  const ticker = process.env.XRAY_QC_BENCH_STALLS ? setInterval(() => {
    const now = performance.now();
    if (now - last > 50) stalls.push(`${((now - lagT) / 1000).toFixed(2)} s: ${(now - last).toFixed(0)} ms`);
    last = now;
  }, 10) : null;
  const main0 = stations[0];
  await burst(main0, 'lag', lagN);
  if (ticker) clearInterval(ticker);
  lagHist.disable();
  const lag = { p99: lagHist.percentile(99) / 1e6, max: lagHist.max / 1e6 };
  // Single captures, queue empty (written → published, one at a time), each followed by a bare
  // run after the same kind of pause: pairs, so the ratio is taken at the same moment.
  const single: number[] = [];
  const pairs: number[] = [];
  const totalOf = main0.db.prepare('SELECT total_ms AS t, published_at AS at FROM inspections WHERE file_path LIKE ?');
  for (let i = 0; i < 7; i++) {
    const img = synthElectrode(9000 + i, null, { width: 1145, height: 2072 });
    const bytes = encodeTiff16(img.width, img.height, img.data, { compression: 'deflate', predictor: true });
    await new Promise((r) => setTimeout(r, 400));
    const t0 = Date.now();
    await writeFile(join(config.capture.dir, `single-${i}.tif`), bytes);
    main0.done++;
    await untilPublished(main0, 200);
    const row = totalOf.get(`%single-${i}.tif`) as { t: number; at: string };
    single.push(Date.parse(row.at) - t0);
    pairs.push(row.t / (await timeBare([await session(false)], 1, 400))[0][0]);
  }
  // the daemon's own capture → verdict time of those (read … inference done: total_ms)
  const singles = main0.db.prepare(`SELECT decode_ms AS d, preprocess_ms AS p, infer_ms AS i, total_ms AS t FROM inspections WHERE file_path LIKE '%single-%'`).all() as Array<{ d: number; p: number; i: number; t: number }>;
  // and of the burst's captures: inference as the daemon times it (handed to the worker → result back: infer_ms)
  const burstInfer = mid((main0.db.prepare(`SELECT infer_ms AS i FROM inspections WHERE file_path NOT LIKE '%single-%'`).all() as Array<{ i: number }>).map((r) => r.i));
  // idle: nothing queued, 10 s
  const idle0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, 10_000));
  const idle = process.cpuUsage(idle0);
  for (const st of [...stations].reverse()) {
    st.db.close();
    await st.daemon.stop('bench done');
  }
  await new Promise<void>((r) => broker.close(() => r()));
  server.close();
  await rm(root, { recursive: true, force: true });

  console.log(`capture.prepare_niceness: ${config.capture.prepare_niceness}; ${rounds} round(s) of ${n} captures (deflate+predictor, 1145×2072)`);
  for (const [k, st] of stations.entries()) {
    const mine = results.filter((r) => r.station === k);
    const perCapture = mine.map((r) => r.burstMs / n / ((r.before + r.after) / 2));
    const perCaptureSame = mine.map((r) => r.burstMs / n / ((r.sameBefore + r.sameAfter) / 2));
    console.log(`\nmodel.intra_op_spinning: ${st.spinning}`);
    console.log(`| burst (in order) | bare session.run before / after, ms | burst, written → all published | per capture vs bare (≤ 1.03) | rate vs bare (≥ 0.97) | bare with the daemon's session options, before / after | per capture vs that |\n|---|---|---|---|---|---|---|`);
    mine.forEach((r, i) => {
      console.log(`| ${results.indexOf(r) + 1} | ${r.before.toFixed(0)} / ${r.after.toFixed(0)} | ${(r.burstMs / 1000).toFixed(1)} s | ${perCapture[i].toFixed(3)} | ${(1 / perCapture[i]).toFixed(3)} | ${r.sameBefore.toFixed(0)} / ${r.sameAfter.toFixed(0)} | ${perCaptureSame[i].toFixed(3)} |`);
    });
    console.log(`| median of the rounds | | | **${mid(perCapture).toFixed(3)}** | **${(1 / mid(perCapture)).toFixed(3)}** | | ${mid(perCaptureSame).toFixed(3)} |`);
  }
  console.log(`\n${stations.length > 1 ? 'The daemon with spinning off:\n' : ''}| figure | value |\n|---|---|`);
  console.log(`| single capture, queue empty: read → verdict (total_ms) / the bare run after it, median of ${pairs.length} pairs | ${mid(pairs).toFixed(3)} (pairs ${pairs.map((x) => x.toFixed(3)).join(', ')}) |`);
  console.log(`| single capture: file written → verdict published, incl. the watcher's settle wait (median of ${single.length}) | ${mid(single).toFixed(0)} ms |`);
  console.log(`| single capture, medians: read + decode / preprocess / inference (infer_ms) / total | ${mid(singles.map((r) => r.d)).toFixed(0)} / ${mid(singles.map((r) => r.p)).toFixed(0)} / ${mid(singles.map((r) => r.i)).toFixed(0)} / ${mid(singles.map((r) => r.t)).toFixed(0)} ms |`);
  console.log(`| bursts: inference, handed to the worker → result back (infer_ms, median) | ${burstInfer.toFixed(0)} ms |`);
  console.log(`| peak RSS (bench process: daemon, bare sessions, the encoded files) | ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB |`);
  console.log(`| event loop delay during a burst of ${lagN} (sampled every 10 ms): p99 / max | ${lag.p99.toFixed(1)} / ${lag.max.toFixed(1)} ms |`);
  console.log(`| process CPU during the bursts (all threads) | ${(cpuMs / burstMsAll * 100).toFixed(1)} % of a core |`);
  console.log(`| idle CPU, empty queue, 10 s | ${((idle.user + idle.system) / 1000 / 10_000 * 100).toFixed(2)} % of a core |`);
  if (process.env.XRAY_QC_BENCH_STALLS) console.log(`stalls > 50 ms in the event-loop burst: ${stalls.join('; ') || 'none'}`);
  // Where the CPU went during the bursts, per thread (the kernel's accounting)
  const perThread = [...threadCpu].map(([tid, x]) => ({ tid, ...x })).filter((x) => x.s >= 0.05).sort((a, b) => b.s - a.s);
  console.log(`\nCPU seconds per thread during the bursts (${(burstMsAll / 1000).toFixed(1)} s; the preparation thread is the one at niceness ${config.capture.prepare_niceness}):`);
  for (const x of perThread) console.log(`  ${x.tid}${x.tid === process.pid ? ' (main: event loop)' : ''} ${x.name}, nice ${x.nice}: ${x.s.toFixed(1)} s`);
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const mid = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];

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
