import { basename } from 'node:path';
import { decide, abnormalProbability, type Reason } from '../decide/verdict.js';
import { decodeTiffFile, type DecodeOptions } from '../decode/tiff.js';
import { XrayError, toXrayError, type ErrorCode } from '../errors.js';
import { InferenceEngine, type LoadResult } from '../infer/engine.js';
import type { Provider } from '../infer/messages.js';
import { loadBundle, resolveBundleDir, type Bundle } from '../model/bundle.js';
import type { Manifest } from '../model/manifest.js';
import { Preprocessor } from '../preprocess/preprocessor.js';

export interface ModelRef {
  name: string;
  version: number;
  sha256: string;
  untrained?: boolean;
}

export interface Timings {
  decode: number;
  preprocess: number;
  infer: number;
  total: number;
}

export interface Scored {
  file: string;
  verdict: 'pass' | 'flag';
  reason: Reason;
  p_abnormal: number;
  threshold: number;
  model: ModelRef;
  width: number;
  height: number;
  /** Per-image bounds for the local and mixed conversions. */
  local_bounds?: { min: number; max: number };
  timings_ms: Timings;
}

export interface Failed {
  file: string;
  verdict: 'error';
  reason: ErrorCode;
  error: { code: ErrorCode; message: string };
}

export type ScoreResult = Scored | Failed;

export interface ScorerOptions {
  providers?: Provider[];
  decode?: DecodeOptions;
  intraOpThreads?: number;
}

export function preprocessorFor(m: Manifest): Preprocessor {
  return new Preprocessor({
    height: m.input.height,
    width: m.input.width,
    conversion: m.preprocess.conversion,
    bounds: m.preprocess.bounds,
    mean: m.preprocess.mean,
    std: m.preprocess.std,
  });
}

const round = (ms: number): number => Math.round(ms * 100) / 100;

/**
 * decode → convert → resize/normalise → infer (worker thread) → decide, for one model bundle.
 * Every stage's failure becomes a coded `error` result; nothing a file contains can throw out.
 */
export class Scorer {
  readonly bundle: Bundle;
  readonly load: LoadResult;
  private readonly engine: InferenceEngine;
  private readonly preprocessor: Preprocessor;
  private readonly options: ScorerOptions;

  private constructor(bundle: Bundle, engine: InferenceEngine, load: LoadResult, options: ScorerOptions) {
    this.bundle = bundle;
    this.engine = engine;
    this.load = load;
    this.options = options;
    this.preprocessor = preprocessorFor(bundle.manifest);
  }

  /** Opens a bundle or a model repository, verifies it and loads it into a warmed-up session. */
  static async open(modelPath: string, options: ScorerOptions = {}): Promise<Scorer> {
    const bundle = await loadBundle(await resolveBundleDir(modelPath));
    const engine = new InferenceEngine();
    await engine.start();
    try {
      const m = bundle.manifest;
      const load = await engine.load(bundle.modelPath, options.providers ?? ['cpu'], {
        inputName: m.input.name, outputName: m.output.name, height: m.input.height, width: m.input.width,
        abnormalIndex: m.output.abnormal_index,
      }, options.intraOpThreads);
      return new Scorer(bundle, engine, load, options);
    } catch (err) {
      await engine.stop();
      throw err;
    }
  }

  get modelRef(): ModelRef {
    const m = this.bundle.manifest;
    return { name: m.name, version: m.version, sha256: this.bundle.modelSha256, ...(m.untrained ? { untrained: true } : {}) };
  }

  async close(): Promise<void> {
    await this.engine.stop();
  }

  async scoreFile(file: string): Promise<ScoreResult> {
    const t0 = performance.now();
    let stage: ErrorCode = 'TIFF_CORRUPT_DATA';
    try {
      const image = await decodeTiffFile(file, this.options.decode);
      const t1 = performance.now();
      stage = 'INFER_FAILED';
      const pre = this.preprocessor.run(image);
      const t2 = performance.now();
      const { output } = await this.engine.infer(pre.tensor);
      const t3 = performance.now();
      const m = this.bundle.manifest;
      const p = abnormalProbability(output, m.output.kind, m.output.abnormal_index);
      if (!Number.isFinite(p)) throw new XrayError('INFER_NON_FINITE', `model output is not finite: [${Array.from(output).join(', ')}]`);
      const policy = { threshold: m.decision.threshold, reviewBand: m.decision.review_band };
      return {
        file,
        ...decide(p, policy),
        p_abnormal: p,
        threshold: policy.threshold,
        model: this.modelRef,
        width: image.width,
        height: image.height,
        ...(pre.localBounds ? { local_bounds: pre.localBounds } : {}),
        timings_ms: { decode: round(t1 - t0), preprocess: round(t2 - t1), infer: round(t3 - t2), total: round(t3 - t0) },
      };
    } catch (err) {
      const e = toXrayError(err, stage);
      return { file, verdict: 'error', reason: e.code, error: { code: e.code, message: e.message } };
    }
  }
}

/** One human-readable line for a result. */
export function formatResult(r: ScoreResult): string {
  if (r.verdict === 'error') return `${basename(r.file)}  ERROR  ${r.error.code}: ${r.error.message}`;
  const model = `${r.model.name} v${r.model.version}${r.model.untrained ? ' (UNTRAINED demo model)' : ''}`;
  return `${basename(r.file)}  ${r.verdict.toUpperCase().padEnd(4)}  ${r.reason.padEnd(9)}  p_abnormal=${r.p_abnormal.toFixed(4)}  threshold=${r.threshold}  ${model}  ${r.timings_ms.total.toFixed(0)} ms`;
}
