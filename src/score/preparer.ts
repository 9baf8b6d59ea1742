import { Worker } from 'node:worker_threads';
import type { DecodeOptions } from '../decode/tiff.js';
import { XrayError } from '../errors.js';
import type { TensorContract } from '../preprocess/preprocessor.js';
import { compiledWorkerUrl } from '../worker-url.js';
import { isShared } from '../transfer.js';
import type { PreparedData } from './prepare.js';
import type { PrepareRequest, PrepareResponse, PrepareWorkerData } from './prepare-worker.js';
import type { ThreadPriority } from './priority.js';

/** Main-thread handle on the preparation worker (one request at a time per capture). */
export class Preparer {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: PreparedData) => void; reject: (e: Error) => void; tensor: Float32Array }>();
  private stopped = false;
  /** How many times the worker was restarted after dying (a capture that crashes it gets an error row). */
  restarts = 0;
  /** The worker thread's priority as it reported it (null: left as the process's). */
  thread: ThreadPriority | null = null;

  /** `niceIncrement`: how much lower than the process's the worker's CPU priority is (0–19). */
  constructor(private readonly niceIncrement = 0) {}

  /** Starts the worker; resolves once it runs (has reported its priority) or has exited. */
  async start(): Promise<void> {
    if (this.worker) return;
    // geotiff imports `web-worker`, which in a worker thread destructures `workerData`: give it an
    // object without `mod`, and it behaves as on the main thread.
    const data: PrepareWorkerData = { niceIncrement: this.niceIncrement };
    const worker = new Worker(compiledWorkerUrl(import.meta.url, './prepare-worker.js'), { workerData: data });
    let running!: () => void;
    const started = new Promise<void>((resolve) => (running = resolve));
    worker.on('message', (m: PrepareResponse) => {
      if ('thread' in m) {
        this.thread = m.thread;
        running();
        return;
      }
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      const r = m.result;
      if (!p) return;
      p.resolve(r.ok ? { ...r, tensor: p.tensor } : r); // written into the shared tensor sent with the request
    });
    const fail = (why: string): void => {
      for (const p of this.pending.values()) p.reject(new XrayError('PREPARE_WORKER_EXITED', `preparation worker ${why}`));
      this.pending.clear();
    };
    worker.on('error', (err) => fail(`error: ${err.message}`));
    worker.on('exit', (code) => {
      running();
      if (this.worker === worker) this.worker = null;
      fail(`exited with code ${code}`);
      if (!this.stopped) {
        // The capture that killed it has its error; the next one gets a fresh worker.
        this.restarts++;
        void this.start();
      }
    });
    this.worker = worker;
    await started;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }

  /**
   * `tensor`: where the worker writes the result, in a SharedArrayBuffer (D24): nothing large
   * crosses back into this thread.
   */
  prepare(file: string, contract: TensorContract, decode: DecodeOptions, tensor: Float32Array): Promise<PreparedData> {
    if (!isShared(tensor)) return Promise.reject(new TypeError('the preparation tensor must be in a SharedArrayBuffer'));
    const worker = this.worker;
    if (!worker) return Promise.reject(new XrayError('PREPARE_WORKER_EXITED', 'preparation worker is not running'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, tensor });
      worker.postMessage({ id, file, contract, decode, tensor } satisfies PrepareRequest);
    });
  }
}
