import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { loadBundle } from '../model/bundle.js';
import { contractFor } from '../model/contract.js';
import { defaultDemoDir, ensureDemoModel } from '../model/demo/demo-model.js';
import { prepareCapture } from '../prepare/capture.js';
import { Preprocessor } from '../prepare/preprocessor.js';
import { quantizeBundle } from '../quantize/quantize.js';
import { synthElectrode } from '../tools/synth.js';
import { encodeTiff16 } from '../tools/tiff-writer.js';

/**
 * `npm run bench:int8 [-- --int8 DIR] [--rounds R]`: int8 against fp32 `session.run` of the full
 * demo model (1×3×2000×1000) in one process, interleaved run by run (the order alternating each
 * round), both sessions with the daemon's options (all graph optimisations, intra-op spinning
 * off), on a real capture's tensor. Wall time and the process's CPU time per run, medians; then
 * each model's peak RSS in a process of its own (VmHWM after loading and 3 runs). Without
 * `--int8`, the demo model is quantised first (16 synthetic captures, 8 held out).
 */

const SESSION: ort.InferenceSession.SessionOptions = {
  graphOptimizationLevel: 'all',
  extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
};

const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

async function captureTensor(bundleDir: string, dir: string): Promise<Float32Array> {
  const img = synthElectrode(4242, 'bubble', { width: 1145, height: 2072 });
  const file = join(dir, 'bench.tif');
  await writeFile(file, encodeTiff16(img.width, img.height, img.data, { compression: 'deflate', predictor: true }));
  const p = await prepareCapture(file, new Preprocessor(contractFor((await loadBundle(bundleDir)).manifest)), {});
  if (!p.ok) throw new Error(`${file}: ${p.error.code}`);
  return p.tensor;
}

/** Child mode: one model's peak RSS. */
async function rssOf(modelPath: string): Promise<void> {
  const s = await ort.InferenceSession.create(modelPath, SESSION);
  const input = new ort.Tensor('float32', new Float32Array(3 * 2000 * 1000).fill(0.1), [1, 3, 2000, 1000]);
  for (let i = 0; i < 3; i++) await s.run({ [s.inputNames[0]]: input });
  console.log(/VmHWM:\s+(\d+)/.exec(await readFile('/proc/self/status', 'utf8'))![1]);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--rss-of') return rssOf(args[1]);
  const valueOf = (flag: string): string | undefined => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);
  const rounds = Number(valueOf('--rounds') ?? 10);
  const root = await mkdtemp(join(tmpdir(), 'xray-qc-bench-int8-'));
  const fp32Dir = await ensureDemoModel(defaultDemoDir());
  let int8Dir = valueOf('--int8');
  if (!int8Dir) {
    const cal = join(root, 'cal');
    execFileSync(process.execPath, [fileURLToPath(new URL('../../bin/xray-qc.js', import.meta.url)), 'synth', '--out', cal, '--count', '24', '--seed', '31', '--abnormal-rate', '0.5', '--compression', 'deflate'], { stdio: 'ignore' });
    int8Dir = join(root, 'int8');
    console.error('quantising the demo model (16 calibration captures, 8 held out)…');
    await quantizeBundle({ bundle: fp32Dir, calibration: cal, out: int8Dir, method: { kind: 'minmax' }, methodText: 'minmax', force: true });
  }
  if (!existsSync(join(int8Dir, 'model.onnx'))) throw new Error(`${int8Dir}: no model.onnx`);
  const tensor = await captureTensor(fp32Dir, root);
  const sessions = { fp32: await ort.InferenceSession.create(join(fp32Dir, 'model.onnx'), SESSION), int8: await ort.InferenceSession.create(join(int8Dir, 'model.onnx'), SESSION) };
  const feeds = (s: ort.InferenceSession) => ({ [s.inputNames[0]]: new ort.Tensor('float32', tensor, [1, 3, 2000, 1000]) });
  for (const s of Object.values(sessions)) await s.run(feeds(s)); // warm-up
  const wall = { fp32: [] as number[], int8: [] as number[] };
  const cpu = { fp32: [] as number[], int8: [] as number[] };
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const order: Array<'fp32' | 'int8'> = r % 2 ? ['int8', 'fp32'] : ['fp32', 'int8'];
    for (const k of order) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await sessions[k].run(feeds(sessions[k]));
      wall[k].push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpu[k].push((c.user + c.system) / 1000);
    }
    ratios.push(wall.fp32[r] / wall.int8[r]);
  }
  for (const s of Object.values(sessions)) await s.release();
  const bench = fileURLToPath(import.meta.url);
  const rss = (path: string): number => Number(execFileSync(process.execPath, [bench, '--rss-of', path], { encoding: 'utf8' }).trim()) / 1024;
  const rssFp32 = rss(join(fp32Dir, 'model.onnx'));
  const rssInt8 = rss(join(int8Dir, 'model.onnx'));
  await rm(root, { recursive: true, force: true });
  const f = (v: number): string => v.toFixed(0);
  console.log(`${rounds} rounds, fp32 and int8 session.run interleaved (order alternating), full demo model 1×3×2000×1000, one capture's tensor`);
  console.log('| model | wall, median (min–max) ms | CPU time, median ms | peak RSS, own process |');
  console.log('|---|---|---|---|');
  console.log(`| fp32 | ${f(median(wall.fp32))} (${f(Math.min(...wall.fp32))}–${f(Math.max(...wall.fp32))}) | ${f(median(cpu.fp32))} | ${f(rssFp32)} MiB |`);
  console.log(`| int8 | ${f(median(wall.int8))} (${f(Math.min(...wall.int8))}–${f(Math.max(...wall.int8))}) | ${f(median(cpu.int8))} | ${f(rssInt8)} MiB |`);
  console.log(`speed-up fp32/int8, median of the per-round ratios: **${median(ratios).toFixed(2)}×** (rounds ${ratios.map((x) => x.toFixed(2)).join(', ')}); CPU time ratio ${(median(cpu.fp32) / median(cpu.int8)).toFixed(2)}×`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
