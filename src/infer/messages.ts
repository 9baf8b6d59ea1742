/** Typed messages between the main thread and the inference worker. */
import type { HeatMap } from '../pipeline/messages.js';


export const PROVIDERS = ['tensorrt', 'cuda', 'cpu'] as const;
export type Provider = (typeof PROVIDERS)[number];

export interface GraphContract {
  inputName: string;
  outputName: string;
  height: number;
  width: number;
  /** The output must have more entries than this index. */
  abnormalIndex: number;
  /** A second output, the heat map (1×h×w), fetched with the first where named. */
  heatmapName?: string;
}


export type ToWorker =
  | { type: 'load'; modelPath: string; providers: Provider[]; graph: GraphContract; intraOpThreads?: number; deviceId?: number; spinning?: boolean; niceIncrement?: number }
  /** `input` in a SharedArrayBuffer stays the sender's (copied in here); any other is transferred and handed back. */
  | { type: 'run'; id: number; input: Float32Array }
  | { type: 'ping'; id: number };

export type FromWorker =
  | { type: 'loaded'; provider: Provider; warnings: string[]; warmupMs: number }
  | { type: 'load-failed'; code: 'MODEL_LOAD_FAILED' | 'MODEL_GRAPH_MISMATCH'; message: string; warnings: string[] }
  | { type: 'result'; id: number; output: Float32Array; heatmap: HeatMap | null; ms: number; input: Float32Array | null }
  | { type: 'run-failed'; id: number; message: string; input: Float32Array | null }
  | { type: 'pong'; id: number };
