import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, extname, join, resolve } from 'node:path';
import { XrayError } from '../errors.js';
import { OnnxModel } from '../infer/onnx-model.js';
import { scoreFile } from '../infer/score.js';
import { loadBundle, type Bundle } from '../model/bundle.js';
import { contractFor } from '../model/contract.js';
import { packBundle } from '../model/pack.js';
import { prepareCapture, ScratchBuffers } from '../prepare/capture.js';
import { Preprocessor } from '../prepare/preprocessor.js';
import { PrepareStage } from '../prepare/stage.js';
import { addGolden, readGolden } from '../sync/golden.js';
import { compareModels, MAX_DELTA, MIN_AGREEMENT, type AgreementReport } from './agreement.js';
import { calibrate, type Method } from './calibrate.js';
import { FLOAT_CONV_OPS, optimisedOps } from './fusion.js';
import { decodeModel, encodeModel, GraphIndex } from './graph.js';
import { activationParams, insertQdq, planQuantization } from './qdq.js';

export interface QuantizeOptions {
  bundle: string;
  /** A folder of captures, or a labels.csv (its `file` column, relative to it). */
  calibration: string;
  out: string;
  version?: number;
  method: Method;
  methodText: string;
  /** Held-out captures for the agreement check (default: every 4th calibration capture, left out of calibration). */
  holdout?: string;
  force?: boolean;
  log?: (line: string) => void;
}

export interface QuantizeResult {
  dir: string;
  report: { method: string; calibration_captures: number; quantised_convs: number; quantised_adds: number; fused: Record<string, number>; agreement: AgreementReport };
}

const CAPTURE = /\.tiff?$/i;

/** The captures a --calibration or --holdout argument names, sorted. */
export async function listCaptures(path: string): Promise<string[]> {
  const s = await stat(path).catch(() => null);
  if (!s) throw new XrayError('QUANTIZE_INVALID_INPUT', `${path}: no such file or folder`);
  if (s.isFile() && extname(path) === '.csv') {
    const [header, ...rows] = (await readFile(path, 'utf8')).split(/\r?\n/).filter(Boolean);
    const col = header.split(',').indexOf('file');
    if (col < 0) throw new XrayError('QUANTIZE_INVALID_INPUT', `${path}: no 'file' column`);
    return rows.map((r) => resolve(dirname(path), r.split(',')[col])).sort();
  }
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(dir, e.name));
      else if (CAPTURE.test(e.name)) found.push(join(dir, e.name));
    }
  };
  await walk(path);
  return found.sort();
}

/**
 * `xray-qc model quantize`: a new bundle whose model is the source's with static int8 QDQ,
 * calibrated on the plant's own captures through the station's own decode + convert + resize +
 * normalise, checked to fuse in ONNX Runtime and to agree with the fp32 model on held-out
 * captures (the report goes into the manifest's metrics and the model card).
 */
export async function quantizeBundle(o: QuantizeOptions): Promise<QuantizeResult> {
  const log = o.log ?? (() => undefined);
  const source = await loadBundle(resolve(o.bundle));
  const out = resolve(o.out);
  if (existsSync(out)) throw new XrayError('QUANTIZE_INVALID_INPUT', `${out} exists already`);
  const g = new GraphIndex(decodeModel(await readFile(source.modelPath), source.modelPath), source.modelPath);
  const plan = planQuantization(g);
  if (plan.convs.length === 0) throw new XrayError('QUANTIZE_INVALID_INPUT', `${source.modelPath}: no convolution to quantise`);
  let calibrationFiles = await listCaptures(o.calibration);
  let holdout = o.holdout ? await listCaptures(o.holdout) : calibrationFiles.filter((_, i) => i % 4 === 3);
  if (!o.holdout) calibrationFiles = calibrationFiles.filter((_, i) => i % 4 !== 3);
  if (calibrationFiles.length === 0) throw new XrayError('QUANTIZE_INVALID_INPUT', `${o.calibration}: no captures (*.tif, *.tiff) to calibrate on`);
  holdout = holdout.filter((f) => !calibrationFiles.includes(f));
  if (holdout.length === 0) throw new XrayError('QUANTIZE_INVALID_INPUT', `${o.holdout ?? o.calibration}: no held-out captures for the agreement check`);

  const m = source.manifest;
  const pre = new Preprocessor(contractFor(m));
  const scratch = new ScratchBuffers();
  async function* tensors(): AsyncIterable<Float32Array> {
    for (const file of calibrationFiles) {
      const p = await prepareCapture(file, pre, {}, undefined, scratch);
      if (p.ok) yield p.tensor;
      else log(`warning: ${file}: ${p.error.code}: ${p.error.message} (not used for calibration)`);
    }
  }
  log(`calibrating ${plan.calibrated.length} activations on ${calibrationFiles.length} captures (${o.methodText})…`);
  const { ranges, count } = await calibrate(await readFile(source.modelPath), plan.calibrated, tensors, m.input.name, [1, 3, m.input.height, m.input.width], o.method);
  if (count === 0) throw new XrayError('QUANTIZE_INVALID_INPUT', `${o.calibration}: none of the ${calibrationFiles.length} captures could be prepared`);
  const params = new Map([...ranges].map(([t, [lo, hi]]) => [t, activationParams(lo, hi)]));

  const staging = `${out}.partial-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  try {
    const modelPath = join(staging, 'model.onnx');
    await writeFile(modelPath, encodeModel(insertQdq(g, plan, params)));
    const fused = await optimisedOps(modelPath);
    const floatConvs = FLOAT_CONV_OPS.reduce((n, op) => n + (fused[op] ?? 0), 0);
    if ((fused.QLinearConv ?? 0) !== plan.convs.length || floatConvs > 0) {
      throw new XrayError('QUANTIZE_NOT_FUSED', `ONNX Runtime fused ${fused.QLinearConv ?? 0} of ${plan.convs.length} convolutions into QLinearConv and left ${floatConvs} in float (${JSON.stringify(fused)})`);
    }
    const version = o.version ?? m.version + 1;
    const pack = (metrics: Record<string, unknown>, extraFiles: string[]) => packBundle({
      onnx: modelPath, out: staging, name: m.name, version, conversion: m.preprocess.conversion, bounds: m.preprocess.bounds,
      threshold: m.decision.threshold, reviewBand: m.decision.review_band, inputName: m.input.name, outputName: m.output.name,
      outputKind: m.output.kind, abnormalIndex: m.output.abnormal_index, height: m.input.height, width: m.input.width,
      mean: m.preprocess.mean, std: m.preprocess.std, untrained: m.untrained, synthetic: m.synthetic,
      description: `${m.description ? `${m.description} ` : ''}int8 QDQ of v${m.version} (xray-qc model quantize, ${o.methodText}).`,
      metrics, extraFiles,
    });
    await pack(m.metrics, []);
    log(`comparing with the fp32 model on ${holdout.length} held-out captures…`);
    const agreement = await agreementOf(source, staging, holdout);
    const report = { method: o.methodText, calibration_captures: count, quantised_convs: plan.convs.length, quantised_adds: plan.adds.length, fused, agreement, source_version: m.version, source_bundle_sha256: source.manifestSha256 };
    const worst = `verdict agreement ${(agreement.verdict_agreement * 100).toFixed(2)} % (at least ${MIN_AGREEMENT * 100} %), max |Δp_abnormal| ${agreement.delta_p_abnormal.max.toFixed(4)} (at most ${MAX_DELTA})`;
    if ((agreement.verdict_agreement < MIN_AGREEMENT || agreement.delta_p_abnormal.max > MAX_DELTA) && !o.force) {
      throw new XrayError('QUANTIZE_DISAGREES', `the int8 model disagrees with fp32 on ${holdout.length} held-out captures: ${worst}; nothing written (--force writes it anyway)`);
    }
    await pack({ ...m.metrics, quantization: report }, await modelCard(source, staging, report));
    const golden = await readGolden(source.dir);
    if (golden) await rescoreGolden(source, staging, golden.tolerance);
    await rename(staging, out);
    return { dir: out, report };
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
}

async function agreementOf(source: Bundle, staged: string, files: string[]): Promise<AgreementReport> {
  const stage = new PrepareStage();
  await stage.start();
  const [fp32, int8] = [await OnnxModel.open(source.dir), await OnnxModel.open(staged)];
  try {
    return await compareModels(fp32, int8, files, stage);
  } finally {
    await fp32.close();
    await int8.close();
    await stage.stop();
  }
}

/** The source's other files, with its model card (if any) told about the quantisation. */
async function modelCard(source: Bundle, staging: string, report: QuantizeResult['report']): Promise<string[]> {
  const names = Object.keys(source.manifest.files).filter((n) => n !== 'model.onnx' && !n.startsWith('golden/') && !n.includes('/'));
  const files: string[] = [];
  for (const name of names) {
    const target = join(staging, name);
    if (name === 'model-card.json') {
      const card = JSON.parse(await readFile(join(source.dir, name), 'utf8')) as Record<string, unknown>;
      await writeFile(target, `${JSON.stringify({ ...card, quantization: report }, null, 2)}\n`);
    } else if (name === 'model-card.md') {
      const a = report.agreement;
      await writeFile(target, `${await readFile(join(source.dir, name), 'utf8')}
## int8 (xray-qc model quantize)

Static QDQ of v${source.manifest.version}: ${report.quantised_convs} convolutions (${report.fused.QLinearConv ?? 0} QLinearConv after ONNX Runtime's fusion) and ${report.quantised_adds} residual Adds (${report.fused.QLinearAdd ?? 0} QLinearAdd) in int8, the head in fp32; calibrated (${report.method}) on ${report.calibration_captures} captures.
On ${a.scored} held-out captures: verdict agreement ${(a.verdict_agreement * 100).toFixed(2)} %, |Δp_abnormal| median ${a.delta_p_abnormal.median.toFixed(5)} / p99 ${a.delta_p_abnormal.p99.toFixed(5)} / max ${a.delta_p_abnormal.max.toFixed(5)}, ${a.review_band_changes} review-band changes; fp32 p_abnormal spread ${a.p_fp32_range[0].toFixed(3)}–${a.p_fp32_range[1].toFixed(3)}.
`);
    } else {
      await copyFile(join(source.dir, name), target);
    }
    files.push(target);
  }
  return files;
}

/** The source's golden samples, scored again by the int8 model (their expected values are its own). */
async function rescoreGolden(source: Bundle, staging: string, tolerance: number): Promise<void> {
  const golden = (await readGolden(source.dir))!;
  const stage = new PrepareStage();
  await stage.start();
  const model = await OnnxModel.open(staging);
  try {
    await addGolden(staging, (file) => scoreFile(file, model, stage), Object.keys(golden.files).map((n) => join(source.dir, 'golden', n)), tolerance);
  } finally {
    await model.close();
    await stage.stop();
  }
}
