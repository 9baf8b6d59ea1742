import { join } from 'node:path';
import { loadBundle, resolveBundleDir, type Bundle } from '../model/bundle.js';
import { contractFor, type TensorContract } from '../model/contract.js';
import type { ModelRef } from '../pipeline/messages.js';
import { InferenceEngine } from './engine.js';
import { modelRef, type LoadResult, type Model, type ModelOptions, type ModelOutput } from './model.js';

/** A bundle in ONNX Runtime, in its own inference worker thread (`session.run` blocks its thread). */
export class OnnxModel implements Model {
  readonly contract: TensorContract;

  private constructor(private current: Bundle, private readonly engine: InferenceEngine, readonly load: LoadResult) {
    this.contract = contractFor(current.manifest);
  }

  /** Opens a bundle or a model repository, verifies it and loads it into a warmed-up session. */
  static async open(path: string, options: ModelOptions = {}): Promise<OnnxModel> {
    const bundle = await loadBundle(await resolveBundleDir(path));
    const engine = new InferenceEngine();
    await engine.start();
    try {
      const m = bundle.manifest;
      const load = await engine.load(bundle.modelPath, options.providers ?? ['cpu'], {
        inputName: m.input.name, outputName: m.output.name, height: m.input.height, width: m.input.width,
        abnormalIndex: m.output.abnormal_index, ...(m.outputs?.heatmap ? { heatmapName: m.outputs.heatmap } : {}),
      }, options.intraOpThreads, options.deviceId, options.intraOpSpinning, options.niceIncrement);
      return new OnnxModel(bundle, engine, load);
    } catch (err) {
      await engine.stop();
      throw err;
    }
  }

  get bundle(): Bundle {
    return this.current;
  }

  get ref(): ModelRef {
    return modelRef(this.current);
  }

  async run(input: Float32Array): Promise<ModelOutput> {
    const r = await this.engine.infer(input);
    return { output: r.output, heatmap: r.heatmap };
  }

  ping(timeoutMs: number): Promise<boolean> {
    return this.engine.ping(timeoutMs);
  }

  movedTo(dir: string): void {
    this.current = { ...this.current, dir, modelPath: join(dir, 'model.onnx') };
  }

  async close(): Promise<void> {
    await this.engine.stop();
  }
}
