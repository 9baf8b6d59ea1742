import type { DecodeOptions } from '../decode/tiff.js';
import { toXrayError } from '../errors.js';
import type { Component } from '../events.js';
import type { TensorContract } from '../model/contract.js';
import type { PreparedCapture, PreparedOk } from '../pipeline/messages.js';
import type { FaultInjection } from './capture.js';
import type { MailboxShape } from './mailbox.js';
import type { ThreadPriority } from '../thread-priority.js';
import { PrepareThread } from './thread.js';

export interface PrepareStageOptions {
  /** CPU priority of the preparation thread below the process's, in niceness steps (default 0). */
  niceIncrement?: number;
  decode?: DecodeOptions;
  /** Mailbox size (tests). */
  mailbox?: MailboxShape;
  /** Test hook: an unexpected exception while preparing matching files. */
  inject?: FaultInjection;
}

/**
 * The preparation stage, one per station whatever the models: its worker thread (read, hash,
 * decode, convert, resize, normalise), the input tensors it lends, and the mailbox hold (D26).
 * Towards inference it has one knob, `setInferenceBusy`: while an inference runs, preparations
 * that finish wait in shared memory without waking the main thread.
 *
 * Tensors live in shared memory (24 MB each at 2000×1000), reused capture after capture: the
 * worker writes one, the inference worker reads it, and nothing that large crosses into the main
 * thread (where V8 otherwise ran a full collection for the external memory of about every
 * capture). Each lent tensor maps to the preparation that holds it until `release`.
 */
export class PrepareStage implements Component {
  readonly name = 'preparation';
  private readonly thread: PrepareThread;
  private readonly free = new Map<number, Float32Array[]>();
  private readonly lent = new Map<Float32Array, object>();
  private inferring = 0;

  constructor(private readonly options: PrepareStageOptions = {}) {
    this.thread = new PrepareThread({ niceIncrement: options.niceIncrement, mailbox: options.mailbox, inject: options.inject });
  }

  async start(): Promise<void> {
    await this.thread.start();
  }

  async stop(): Promise<void> {
    await this.thread.stop();
  }

  /** The preparation thread's priority as it reported it (null: left as the process's). */
  get priority(): ThreadPriority | null {
    return this.thread.thread;
  }

  /** How many times the worker was restarted after dying. */
  get restarts(): number {
    return this.thread.restarts;
  }

  /** Prepares `file` into a tensor for a model with `contract`; never throws. */
  async prepare(file: string, contract: TensorContract): Promise<PreparedCapture> {
    const length = 3 * contract.height * contract.width;
    const tensor = this.free.get(length)?.pop() ?? new Float32Array(new SharedArrayBuffer(length * Float32Array.BYTES_PER_ELEMENT));
    this.lent.set(tensor, tensor);
    let r: PreparedCapture;
    try {
      r = await this.thread.prepare(file, contract, this.options.decode ?? {}, tensor);
    } catch (err) {
      this.lent.delete(tensor); // dropped, not reused: the worker died, perhaps while writing it
      const e = toXrayError(err, 'PREPARE_WORKER_EXITED');
      return { ok: false, file, stat: null, sha256: null, error: { code: e.code, message: e.message } };
    }
    if (!r.ok) {
      this.giveBack(tensor, tensor);
      return r;
    }
    this.lent.set(tensor, r);
    return r;
  }

  /** Whether `p`'s tensor still holds its capture (it was not released yet). */
  holds(p: PreparedOk): boolean {
    return this.lent.get(p.tensor) === p;
  }

  /** `p` was scored, or will not be: its tensor is free again. */
  release(p: PreparedCapture): void {
    if (p.ok) this.giveBack(p.tensor, p);
  }

  /**
   * true while an inference runs (calls nest): results finishing meanwhile wait without waking
   * this thread; at every end they are collected, so overlapping inferences starve none.
   */
  setInferenceBusy(on: boolean): void {
    if (on) {
      if (this.inferring++ === 0) this.thread.hold(true);
      return;
    }
    if (--this.inferring === 0) this.thread.hold(false);
    else this.thread.collect();
  }

  private giveBack(t: Float32Array, holder: object): void {
    if (this.lent.get(t) !== holder) return;
    this.lent.delete(t);
    const pool = this.free.get(t.length) ?? [];
    if (pool.length < 2) pool.push(t);
    this.free.set(t.length, pool);
  }
}
