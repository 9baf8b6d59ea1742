import { Worker } from 'node:worker_threads';
import type { DecodeOptions } from '../decode/tiff.js';
import { XrayError } from '../errors.js';
import type { TensorContract } from '../model/contract.js';
import type { PreparedCapture } from '../pipeline/messages.js';
import { isShared } from '../transfer.js';
import { compiledWorkerUrl } from '../worker-url.js';
import type { FaultInjection } from './capture.js';
import { Mailbox, PENDING, READY, WAKE, type MailboxShape } from './mailbox.js';
import type { ThreadPriority } from '../thread-priority.js';
import type { MailboxResult, PrepareRequest, PrepareResponse, PrepareWorkerData } from './worker.js';

interface Pending { resolve: (r: PreparedCapture) => void; reject: (e: Error) => void; tensor: Float32Array; slot: number }

export interface PrepareThreadOptions {
  /** How much lower than the process's the worker's CPU priority is (0–19). */
  niceIncrement?: number;
  /** Mailbox size (tests); results that do not fit a slot come as messages. */
  mailbox?: MailboxShape;
  /** Test hook: an unexpected exception while preparing matching files. */
  inject?: FaultInjection;
}

/** Main-thread handle on the preparation worker thread (one request per capture in flight). */
export class PrepareThread {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly mailbox: Mailbox;
  private readonly freeSlots: number[];
  private readonly niceIncrement: number;
  private readonly inject: FaultInjection | null;
  private holding = false;
  private stopped = false;
  /** How many times the worker was restarted after dying (a capture that crashes it gets an error row). */
  restarts = 0;
  /** The worker thread's priority as it reported it (null: left as the process's). */
  thread: ThreadPriority | null = null;

  constructor(options: PrepareThreadOptions = {}) {
    this.niceIncrement = options.niceIncrement ?? 0;
    this.inject = options.inject ?? null;
    this.mailbox = Mailbox.create(options.mailbox ?? { slots: 4, slotBytes: 16384 });
    this.freeSlots = Array.from({ length: this.mailbox.shape.slots }, (_, i) => i);
  }

  /** Starts the worker; resolves once it runs (has reported its priority) or has exited. */
  async start(): Promise<void> {
    if (this.worker) return;
    // geotiff imports `web-worker`, which in a worker thread destructures `workerData`: give it an
    // object without `mod`, and it behaves as on the main thread.
    const data: PrepareWorkerData = { niceIncrement: this.niceIncrement, mailbox: { buffer: this.mailbox.buffer, shape: this.mailbox.shape }, inject: this.inject };
    const worker = new Worker(compiledWorkerUrl(import.meta.url, './worker.js'), { workerData: data });
    let running!: () => void;
    const started = new Promise<void>((resolve) => (running = resolve));
    worker.on('message', (m: PrepareResponse) => {
      if ('thread' in m) {
        this.thread = m.thread;
        running();
        return;
      }
      // (already collected: its slot may hold another request's result by now, so not read)
      if (!this.pending.has(m.id)) return;
      this.deliver(m.id, 'result' in m ? m.result : this.mailbox.read<MailboxResult>(m.slot));
    });
    const fail = (why: string): void => {
      for (const p of this.pending.values()) {
        this.release(p.slot);
        p.reject(new XrayError('PREPARE_WORKER_EXITED', `preparation worker ${why}`));
      }
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
  prepare(file: string, contract: TensorContract, decode: DecodeOptions, tensor: Float32Array): Promise<PreparedCapture> {
    if (!isShared(tensor)) return Promise.reject(new TypeError('the preparation tensor must be in a SharedArrayBuffer'));
    const worker = this.worker;
    if (!worker) return Promise.reject(new XrayError('PREPARE_WORKER_EXITED', 'preparation worker is not running'));
    const id = this.nextId++;
    const slot = this.freeSlots.pop() ?? -1;
    if (slot >= 0) Atomics.store(this.mailbox.states, slot, this.holding ? PENDING : WAKE);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, tensor, slot });
      worker.postMessage({ id, file, contract, decode, tensor, slot } satisfies PrepareRequest);
    });
  }

  /**
   * `hold(true)` while inference runs: results that finish meanwhile wait in shared memory without
   * waking this thread (D26). `hold(false)` when it ends takes them (their promises resolve now);
   * from then on, and for the others, every result wakes this thread.
   */
  hold(on: boolean): void {
    this.holding = on;
    if (!on) this.collect();
  }

  /**
   * Takes the results that finished while held, now (their promises resolve). Not holding, the
   * others are told to wake this thread when they finish; still holding (another inference runs),
   * they keep waiting.
   */
  collect(): void {
    const states = this.mailbox.states;
    for (const [id, p] of this.pending) {
      if (p.slot < 0) continue;
      const state = this.holding ? Atomics.load(states, p.slot) : Atomics.compareExchange(states, p.slot, PENDING, WAKE);
      if (state === READY) this.deliver(id, this.mailbox.read<MailboxResult>(p.slot));
    }
  }

  /** Finished results waiting in the mailbox for `collect()` (tests, diagnostics). */
  get held(): number {
    let n = 0;
    for (const p of this.pending.values()) if (p.slot >= 0 && Atomics.load(this.mailbox.states, p.slot) === READY) n++;
    return n;
  }

  private deliver(id: number, r: PreparedCapture | MailboxResult): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.release(p.slot);
    p.resolve(r.ok ? { ...r, tensor: p.tensor } : r); // written into the shared tensor sent with the request
  }

  private release(slot: number): void {
    if (slot >= 0) this.freeSlots.push(slot);
  }
}
