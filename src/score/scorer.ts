import { basename, join } from 'node:path';
import { decide, abnormalProbability, type Reason } from '../decide/verdict.js';
import type { DecodeOptions } from '../decode/tiff.js';
import { XrayError, toXrayError, type ErrorCode } from '../errors.js';
import { InferenceEngine, type LoadResult } from '../infer/engine.js';
import type { Provider } from '../infer/messages.js';
import { loadBundle, resolveBundleDir, type Bundle } from '../model/bundle.js';
import type { Manifest } from '../model/manifest.js';
import { Preprocessor, type TensorContract } from '../preprocess/preprocessor.js';
import type { PreparedData } from './prepare.js';
import { Preparer } from './preparer.js';
import type { ThreadPriority } from './priority.js';

export interface ModelRef {
  name: string;
  version: number;
  sha256: string;
  untrained?: boolean;
  /** Trained on synthetic captures only (the demo model). */
  synthetic?: boolean;
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

/** A capture after stage 1: its tensor, or why it cannot be scored. */
export type Prepared =
  | {
      ok: true; file: string; capture: { size: number; mtimeMs: number }; sha256: string; width: number; height: number;
      tensor: Float32Array; localBounds: { min: number; max: number } | null; t0: number; decodeMs: number; preprocessMs: number;
    }
  | { ok: false; file: string; capture: { size: number; mtimeMs: number } | null; sha256: string | null; failure: Failed };

export interface ScorerOptions {
  providers?: Provider[];
  decode?: DecodeOptions;
  intraOpThreads?: number;
  /** Let ONNX Runtime's threads spin-wait (default false). */
  intraOpSpinning?: boolean;
  /** CPU priority of the preparation thread below the process's, in niceness steps (default 0). */
  prepareNiceness?: number;
  /** GPU for the cuda / tensorrt providers. */
  deviceId?: number;
}

export function contractFor(m: Manifest): TensorContract {
  return {
    height: m.input.height,
    width: m.input.width,
    conversion: m.preprocess.conversion,
    bounds: m.preprocess.bounds,
    mean: m.preprocess.mean,
    std: m.preprocess.std,
  };
}

export function preprocessorFor(m: Manifest): Preprocessor {
  return new Preprocessor(contractFor(m));
}

const round = (ms: number): number => Math.round(ms * 100) / 100;

/**
 * decode → convert → resize/normalise → infer (worker thread) → decide, for one model bundle.
 * Every stage's failure becomes a coded `error` result; nothing a file contains can throw out.
 */
export class Scorer {
  private currentBundle: Bundle;
  readonly load: LoadResult;
  private readonly engine: InferenceEngine;
  private readonly contract: TensorContract;
  private readonly options: ScorerOptions;
  /**
   * Input tensors in shared memory (24 MB each at 2000×1000), reused capture after capture: the
   * preparation worker writes one, the inference worker reads it, and nothing that large crosses
   * into the main thread (where V8 otherwise ran a full collection, with background marking, for
   * the external memory of about every capture). Free ones here; each lent one maps to the
   * preparation that holds it (to itself while it is being written) until `complete` or `discard`.
   */
  private readonly free: Float32Array[] = [];
  private readonly lent = new Map<Float32Array, object>();
  /** Inferences running (the preparer holds results meanwhile). */
  private inferring = 0;

  private constructor(bundle: Bundle, engine: InferenceEngine, private readonly preparer: Preparer, load: LoadResult, options: ScorerOptions) {
    this.currentBundle = bundle;
    this.engine = engine;
    this.load = load;
    this.options = options;
    this.contract = contractFor(bundle.manifest);
  }

  private take(): Float32Array {
    const t = this.free.pop() ?? new Float32Array(new SharedArrayBuffer(3 * this.contract.height * this.contract.width * Float32Array.BYTES_PER_ELEMENT));
    this.lent.set(t, t);
    return t;
  }

  private giveBack(t: Float32Array, holder: object): void {
    if (this.lent.get(t) !== holder) return;
    this.lent.delete(t);
    if (this.free.length < 2) this.free.push(t);
  }

  /** Opens a bundle or a model repository, verifies it and loads it into a warmed-up session. */
  static async open(modelPath: string, options: ScorerOptions = {}): Promise<Scorer> {
    const bundle = await loadBundle(await resolveBundleDir(modelPath));
    const engine = new InferenceEngine();
    await engine.start();
    const preparer = new Preparer({ niceIncrement: options.prepareNiceness ?? 0 });
    await preparer.start();
    try {
      const m = bundle.manifest;
      const load = await engine.load(bundle.modelPath, options.providers ?? ['cpu'], {
        inputName: m.input.name, outputName: m.output.name, height: m.input.height, width: m.input.width,
        abnormalIndex: m.output.abnormal_index,
      }, options.intraOpThreads, options.deviceId, options.intraOpSpinning);
      return new Scorer(bundle, engine, preparer, load, options);
    } catch (err) {
      await engine.stop();
      await preparer.stop();
      throw err;
    }
  }

  /** The preparation thread's priority as it reported it. */
  get prepareThread(): ThreadPriority | null {
    return this.preparer.thread;
  }

  get bundle(): Bundle {
    return this.currentBundle;
  }

  /** The bundle folder was renamed (staging → repository); the loaded session is unaffected. */
  movedTo(dir: string): void {
    this.currentBundle = { ...this.currentBundle, dir, modelPath: join(dir, 'model.onnx') };
  }

  get modelRef(): ModelRef {
    const m = this.bundle.manifest;
    return {
      name: m.name, version: m.version, sha256: this.bundle.modelSha256,
      ...(m.untrained ? { untrained: true } : {}), ...(m.synthetic ? { synthetic: true } : {}),
    };
  }

  async close(): Promise<void> {
    await this.engine.stop();
    await this.preparer.stop();
  }

  /**
   * Stage 1, in the preparation worker: read, hash, decode, convert, resize, normalise. Runs while
   * the previous capture is in inference, and never on the event loop.
   */
  async prepare(file: string): Promise<Prepared> {
    const t0 = performance.now();
    const tensor = this.take();
    let r: PreparedData;
    try {
      r = await this.preparer.prepare(file, this.contract, this.options.decode ?? {}, tensor);
    } catch (err) {
      this.lent.delete(tensor); // (dropped, not reused: the worker died, perhaps while writing it)
      const e = toXrayError(err, 'PREPARE_WORKER_EXITED');
      return { ok: false, file, capture: null, sha256: null, failure: failed(file, e) };
    }
    if (!r.ok) {
      this.giveBack(tensor, tensor);
      return { ok: false, file, capture: r.capture, sha256: r.sha256, failure: failed(file, new XrayError(r.code, r.message)) };
    }
    const prepared = { ...r, t0 };
    this.lent.set(tensor, prepared);
    return prepared;
  }

  /** A prepared capture that will not be scored (deferred, already audited, stopping): its tensor is free again. */
  discard(prepared: Prepared): void {
    if (prepared.ok) this.giveBack(prepared.tensor, prepared);
  }

  /** Stage 2: inference in the worker thread, then the decision. */
  async complete(prepared: Prepared): Promise<ScoreResult> {
    if (!prepared.ok) return prepared.failure;
    if (this.lent.get(prepared.tensor) !== prepared) {
      // scored or discarded already: its tensor may hold another capture by now
      return failed(prepared.file, new XrayError('INFER_FAILED', 'this preparation was already scored or discarded; prepare the capture again'));
    }
    try {
      const t2 = performance.now();
      let output: Float32Array;
      // The next capture's preparation, finishing meanwhile, waits without waking this thread (D26).
      this.inferring++;
      this.preparer.hold(true);
      try {
        ({ output } = await this.engine.infer(prepared.tensor));
      } finally {
        this.giveBack(prepared.tensor, prepared);
        // collect at every end, not only the last: overlapping calls must not starve a result
        if (--this.inferring === 0) this.preparer.hold(false);
        else this.preparer.collect();
      }
      const t3 = performance.now();
      const m = this.bundle.manifest;
      const p = abnormalProbability(output, m.output.kind, m.output.abnormal_index);
      if (!Number.isFinite(p)) throw new XrayError('INFER_NON_FINITE', `model output is not finite: [${Array.from(output).join(', ')}]`);
      const policy = { threshold: m.decision.threshold, reviewBand: m.decision.review_band };
      return {
        file: prepared.file,
        ...decide(p, policy),
        p_abnormal: p,
        threshold: policy.threshold,
        model: this.modelRef,
        width: prepared.width,
        height: prepared.height,
        ...(prepared.localBounds ? { local_bounds: prepared.localBounds } : {}),
        timings_ms: {
          decode: round(prepared.decodeMs), preprocess: round(prepared.preprocessMs), infer: round(t3 - t2), total: round(t3 - prepared.t0),
        },
      };
    } catch (err) {
      return failed(prepared.file, toXrayError(err, 'INFER_FAILED'));
    }
  }

  async scoreFile(file: string): Promise<ScoreResult> {
    return this.complete(await this.prepare(file));
  }

  /** Answers once the inference worker has handled everything sent before (watchdog). */
  ping(timeoutMs: number): Promise<boolean> {
    return this.engine.ping(timeoutMs);
  }
}

function failed(file: string, e: XrayError): Failed {
  return { file, verdict: 'error', reason: e.code, error: { code: e.code, message: e.message } };
}

/** One human-readable line for a result. */
export function formatResult(r: ScoreResult): string {
  if (r.verdict === 'error') return `${basename(r.file)}  ERROR  ${r.error.code}: ${r.error.message}`;
  const model = `${r.model.name} v${r.model.version}${r.model.untrained ? ' (UNTRAINED demo model)' : r.model.synthetic ? ' (trained on synthetic captures)' : ''}`;
  return `${basename(r.file)}  ${r.verdict.toUpperCase().padEnd(4)}  ${r.reason.padEnd(9)}  p_abnormal=${r.p_abnormal.toFixed(4)}  threshold=${r.threshold}  ${model}  ${r.timings_ms.total.toFixed(0)} ms`;
}
