import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { readCaptureFile } from '../decode/capture-file.js';
import { decodeTiff } from '../decode/tiff.js';
import { InferenceEngine } from '../infer/engine.js';
import { loadBundle } from '../model/bundle.js';
import { defaultDemoDir, ensureDemoModel } from '../model/demo/demo-model.js';
import { ScratchBuffers } from '../prepare/capture.js';
import { Preprocessor } from '../prepare/preprocessor.js';
import { contractFor } from '../model/contract.js';
import { synthElectrode } from '../tools/synth.js';
import { encodeTiff16, type WriteOptions } from '../tools/tiff-writer.js';

/**
 * `npm run bench [-- --runs N] [--rounds R] [--no-infer] [--vs-python]`: per-stage medians on synthetic
 * 1145×2072 captures for each encoding, with the full-size demo model, beside a bare
 * `session.run` on the same tensor in this process; `--vs-python` runs the Python/OpenCV
 * reference (src/bench/reference.py, one long-lived process) on the same files, single runs of
 * ours and of it alternating (default 5 rounds of 9 with `--vs-python`): this host has slow and
 * fast phases seconds long (docs/performance.md), which must reach both sides alike. Compare
 * ratios within one run: this machine is shared and noisy.
 */

/** Debian's python3 with python3-opencv (the reference); the script ships beside this file's source. */
const PYTHON = process.env.XRAY_QC_PYTHON ?? '/usr/bin/python3';
const REFERENCE = fileURLToPath(new URL('../../src/bench/reference.py', import.meta.url));

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (ms: number): string => ms.toFixed(1);

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const vsPython = args.includes('--vs-python');
  const runs = Number(args[args.indexOf('--runs') + 1]) || (vsPython ? 9 : 7);
  const withInfer = !args.includes('--no-infer');
  const dir = await mkdtemp(join(tmpdir(), 'xray-qc-bench-'));
  const bundle = await loadBundle(await ensureDemoModel(defaultDemoDir()));
  const pre = new Preprocessor(contractFor(bundle.manifest));
  const img = synthElectrode(42, 'smudge', { width: 1145, height: 2072 });
  const encodings: Array<[string, WriteOptions]> = [
    ['uncompressed', { compression: 'none' }],
    ['LZW', { compression: 'lzw' }],
    ['deflate', { compression: 'deflate' }],
    ['deflate + predictor', { compression: 'deflate', predictor: true }],
  ];
  console.log(`machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
  const rounds = Number(args[args.indexOf('--rounds') + 1]) || (vsPython ? 5 : 1);
  console.log(`capture 1145×2072 → model input ${bundle.manifest.input.height}×${bundle.manifest.input.width}, conversion ${bundle.manifest.preprocess.conversion}, ${rounds} round(s) of ${runs} runs; in ms, the median over rounds of each round's median\n`);
  // Preallocated, as the reference's array is (the daemon reuses the buffers the worker returns).
  let tensor: Float32Array = new Float32Array(3 * bundle.manifest.input.height * bundle.manifest.input.width);
  const files = await Promise.all(encodings.map(async ([name, options]) => {
    const file = join(dir, `${name.replace(/\W+/g, '_')}.tif`);
    const bytes = encodeTiff16(img.width, img.height, img.data, { rowsPerStrip: 16, ...options });
    await writeFile(file, bytes);
    return { name, file, mb: bytes.length / 1e6, decode: [] as number[], prep: [] as number[], total: [] as number[], python: [] as number[] };
  }));
  const reference = vsPython ? startReference(bundle.manifest.preprocess.bounds!) : null;
  for (let r = 0; r < rounds; r++) {
    for (const f of files) {
      const decode: number[] = [];
      const prep: number[] = [];
      const python: number[] = [];
      const scratch = new ScratchBuffers(); // as in the preparation worker: buffers reused capture after capture
      for (let i = 0; i < runs + 1; i++) {
        const t0 = performance.now();
        const reuse = scratch.acquire(pre);
        const image = await decodeTiff((await readCaptureFile(f.file, {}, reuse)).bytes, {}, reuse);
        scratch.release();
        const t1 = performance.now();
        tensor = pre.run(image, tensor).tensor;
        const t2 = performance.now();
        const py = reference ? await reference.run(f.file) : 0; // the reference's run right after ours
        if (i > 0) { decode.push(t1 - t0); prep.push(t2 - t1); python.push(py); } // the first run warms the JIT
      }
      f.decode.push(median(decode));
      f.prep.push(median(prep));
      f.total.push(median(decode.map((d, i) => d + prep[i])));
      if (reference) f.python.push(median(python));
    }
  }
  reference?.stop();
  console.log(`| encoding | file MB | decode | convert + resize + normalise | decode + preprocess |${vsPython ? ' Python/OpenCV | ratio | ratio per round |' : ''}`);
  console.log(`|---|---|---|---|---|${vsPython ? '---|---|---|' : ''}`);
  for (const f of files) {
    const ours = median(f.total);
    const extra = vsPython
      ? ` ${fmt(median(f.python))} | ${(ours / median(f.python)).toFixed(2)} | ${f.total.map((t, i) => (t / f.python[i]).toFixed(2)).join(', ')} |`
      : '';
    console.log(`| ${f.name} | ${f.mb.toFixed(1)} | ${fmt(median(f.decode))} | ${fmt(median(f.prep))} | ${fmt(ours)} |${extra}`);
  }
  if (withInfer) {
    const m = bundle.manifest;
    const shape = [1, 3, m.input.height, m.input.width];
    const engine = new InferenceEngine();
    await engine.start();
    await engine.load(bundle.modelPath, ['cpu'], { inputName: m.input.name, outputName: m.output.name, height: m.input.height, width: m.input.width, abnormalIndex: m.output.abnormal_index });
    const bare = await ort.InferenceSession.create(bundle.modelPath, { executionProviders: ['cpu'], graphOptimizationLevel: 'all' });
    await bare.run({ [m.input.name]: new ort.Tensor('float32', tensor.slice(), shape) });
    const viaWorker: number[] = [];
    const bareRun: number[] = [];
    for (let i = 0; i < runs; i++) { // interleaved, so drift on a shared machine hits both alike
      const input = tensor.slice(); // a copy to hand over (transferred), made outside the timing
      let t = performance.now();
      await engine.infer(input);
      viaWorker.push(performance.now() - t);
      const feeds = { [m.input.name]: new ort.Tensor('float32', tensor.slice(), shape) };
      t = performance.now();
      await bare.run(feeds);
      bareRun.push(performance.now() - t);
    }
    await engine.stop();
    await bare.release();
    console.log('\n| inference (full ResNet-34 + head, fp32, CPU) | median ms |');
    console.log('|---|---|');
    console.log(`| bare session.run, main thread | ${fmt(median(bareRun))} |`);
    console.log(`| xray-qc worker (transfer + run + return) | ${fmt(median(viaWorker))} |`);
    console.log(`| ratio worker / bare | ${(median(viaWorker) / median(bareRun)).toFixed(3)} |`);
  }
  await rm(dir, { recursive: true, force: true });
}

/** The reference as one long-lived process: a path in, its time in ms out, one run per line. */
function startReference(bounds: { min: number; max: number }): { run(file: string): Promise<number>; stop(): void } {
  const child = spawn(PYTHON, [REFERENCE, String(bounds.min), String(bounds.max)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let failure = '';
  child.on('error', (err) => (failure = `: ${err.message}`)); // e.g. no such interpreter
  child.stdin.on('error', () => {}); // a reference that died: reported by run() below
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    async run(file) {
      child.stdin.write(`${file}\n`);
      const line = await lines.next();
      const ms = Number(line.value);
      if (line.done || !Number.isFinite(ms)) throw new Error(`the Python reference (${PYTHON} ${REFERENCE}) gave no time for ${file}${failure}`);
      return ms;
    },
    stop() {
      child.stdin.end();
    },
  };
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
