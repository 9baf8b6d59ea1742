import type { Bundle } from '../model/bundle.js';
import type { TensorContract } from '../model/contract.js';
import type { HeatMap, ModelRef } from '../pipeline/messages.js';
import type { Provider } from './messages.js';

/** How a model was loaded: the provider that took it, what the others said, the warm-up's time. */
export interface LoadResult {
  provider: Provider;
  warnings: string[];
  warmupMs: number;
}

/**
 * One loaded model bundle, behind the interface the station uses: a second model (shadow) or
 * another backend is one more implementation of it (onnx-model.ts is the one there is).
 */
export interface Model {
  readonly bundle: Bundle;
  readonly ref: ModelRef;
  /** What its input tensor must be (the preparation stage makes it so). */
  readonly contract: TensorContract;
  readonly load: LoadResult;
  /** The raw output for one input tensor (NCHW float32; shared memory is fine), and its heat map if the graph has one. */
  run(input: Float32Array): Promise<ModelOutput>;
  /** Answers true once the backend has handled everything sent before, within `timeoutMs` (watchdog). */
  ping(timeoutMs: number): Promise<boolean>;
  /** The bundle folder was renamed (staging → repository); the loaded model is unaffected. */
  movedTo(dir: string): void;
  close(): Promise<void>;
}

export interface ModelOutput {
  output: Float32Array;
  heatmap: HeatMap | null;
}

export interface ModelOptions {
  providers?: Provider[];
  intraOpThreads?: number;
  /** Let ONNX Runtime's threads spin-wait (default false). */
  intraOpSpinning?: boolean;
  /** GPU for the cuda / tensorrt providers. */
  deviceId?: number;
  /** Run the inference threads this many niceness steps below the process (a shadow model yields to the active one). */
  niceIncrement?: number;
}

/** Opens, verifies and loads the bundle (or the repository's active bundle) at a path. */
export type OpenModel = (path: string) => Promise<Model>;

export function modelRef(bundle: Bundle): ModelRef {
  const m = bundle.manifest;
  return {
    name: m.name, version: m.version, sha256: bundle.modelSha256,
    ...(m.untrained ? { untrained: true } : {}), ...(m.synthetic ? { synthetic: true } : {}), ...(m.fit !== undefined ? { fit: m.fit } : {}),
  };
}
