import { Worker } from 'node:worker_threads';
import { XrayError } from '../errors.js';
import { transferList } from '../transfer.js';
import { compiledWorkerUrl } from '../worker-url.js';
import type { FromWorker, GraphContract, Provider, ToWorker } from './messages.js';
import type { HeatMap } from '../pipeline/messages.js';
import type { LoadResult } from './model.js';


export interface InferResult {
  output: Float32Array;
  /** The heat map, for a graph whose manifest names one (outputs.heatmap). */
  heatmap: HeatMap | null;
  ms: number;
  /** A transferred input tensor, handed back for reuse (null for one in shared memory: it never left). */
  input: Float32Array | null;
}

/**
 * Main-thread handle on the inference worker. `load` creates the session (trying providers in
 * order), checks the graph against the manifest and warms it up; `infer` hands the input tensor
 * to the worker (shared memory stays shared; any other buffer is transferred, not copied) and
 * resolves with the model's output.
 */
export class InferenceEngine {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: InferResult) => void; reject: (e: Error) => void }>();
  private readonly pongs = new Map<number, () => void>();
  private loadWaiter: { resolve: (r: LoadResult) => void; reject: (e: Error) => void } | null = null;

  async start(): Promise<void> {
    if (this.worker) return;
    const worker = new Worker(compiledWorkerUrl(import.meta.url, './worker.js'));
    worker.on('message', (message: FromWorker) => this.onMessage(message));
    worker.on('error', (err) => this.failAll(new XrayError('INFER_WORKER_EXITED', `inference worker error: ${err.message}`)));
    worker.on('exit', (code) => {
      this.worker = null;
      this.failAll(new XrayError('INFER_WORKER_EXITED', `inference worker exited with code ${code}`));
    });
    this.worker = worker;
  }

  async stop(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.terminate();
  }

  load(modelPath: string, providers: Provider[], graph: GraphContract, intraOpThreads?: number, deviceId?: number, spinning?: boolean, niceIncrement?: number): Promise<LoadResult> {
    const worker = this.requireWorker();
    if (this.loadWaiter) return Promise.reject(new Error('a model load is already in progress'));
    return new Promise((resolve, reject) => {
      this.loadWaiter = { resolve, reject };
      this.post(worker, { type: 'load', modelPath, providers, graph, intraOpThreads, deviceId, spinning, niceIncrement });
    });
  }

  infer(input: Float32Array): Promise<InferResult> {
    const worker = this.requireWorker();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.post(worker, { type: 'run', id, input }, transferList(input));
    });
  }

  /** Resolves true when the worker answers within `timeoutMs` (it answers between two runs). */
  ping(timeoutMs: number): Promise<boolean> {
    const worker = this.worker;
    if (!worker) return Promise.resolve(false);
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pongs.delete(id);
        resolve(false);
      }, timeoutMs);
      this.pongs.set(id, () => {
        clearTimeout(timer);
        resolve(true);
      });
      this.post(worker, { type: 'ping', id });
    });
  }

  private post(worker: Worker, message: ToWorker, transfer: ArrayBuffer[] = []): void {
    worker.postMessage(message, transfer);
  }

  private requireWorker(): Worker {
    if (!this.worker) throw new XrayError('INFER_WORKER_EXITED', 'inference worker is not running');
    return this.worker;
  }

  private onMessage(message: FromWorker): void {
    switch (message.type) {
      case 'loaded':
        this.loadWaiter?.resolve({ provider: message.provider, warnings: message.warnings, warmupMs: message.warmupMs });
        this.loadWaiter = null;
        break;
      case 'load-failed':
        this.loadWaiter?.reject(new XrayError(message.code, message.message));
        this.loadWaiter = null;
        break;
      case 'result':
        this.pending.get(message.id)?.resolve({ output: message.output, heatmap: message.heatmap, ms: message.ms, input: message.input });
        this.pending.delete(message.id);
        break;
      case 'run-failed':
        this.pending.get(message.id)?.reject(new XrayError('INFER_FAILED', message.message));
        this.pending.delete(message.id);
        break;
      case 'pong':
        this.pongs.get(message.id)?.();
        this.pongs.delete(message.id);
        break;
    }
  }

  private failAll(error: Error): void {
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    this.loadWaiter?.reject(error);
    this.loadWaiter = null;
  }
}
