import { Admission } from './admission.js';
import { failedScore, type PreparedCapture, type QueuedCapture, type Scored } from './messages.js';
import type { LoopOptions, LoopStages } from './stages.js';

interface InFlight<M> {
  capture: QueuedCapture;
  /** The model this capture was prepared for; it is also the one that scores it. */
  model: M;
  startedAt: number;
  prepared: Promise<PreparedCapture>;
  /** The preparation's result once it is there. */
  ready: PreparedCapture | null;
  /** Its inference, once started. */
  scoring: Promise<Scored> | null;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The capture loop, scheduling only: takes the oldest queued capture, prepares it while the
 * previous one is in inference, scores it, and has it recorded. What is scored now is
 * admission.ts's to say. Models switch between two captures.
 */
export class CaptureLoop<M> {
  readonly name = 'capture loop';
  private running = false;
  private loop: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;
  private readonly admission: Admission;
  private recordFault: string | null = null;
  private model: M | null;
  private pendingSwap: { model: M; resolve: (old: M | null) => void } | null = null;

  constructor(private readonly stages: LoopStages<M>, private readonly o: LoopOptions, initial: M | null) {
    this.model = initial;
    this.admission = new Admission(stages, o.incompleteGraceMs, o.logger, () => this.wake());
  }

  /** true while nothing is in flight and the loop waits for a capture (a shadow model may run then). */
  get idle(): boolean {
    return this.wakeUp !== null;
  }

  /** The model new captures are prepared for (null: none yet; captures stay queued). */
  get serving(): M | null {
    return this.model;
  }

  /** Switches between two captures: the one in flight finishes on the old model. Resolves with the old one (the caller closes it). */
  swap(next: M): Promise<M | null> {
    if (!this.running) {
      const old = this.model;
      this.model = next;
      return Promise.resolve(old);
    }
    return new Promise((resolve) => {
      this.pendingSwap?.resolve(this.pendingSwap.model); // a newer request supersedes an unapplied one
      this.pendingSwap = { model: next, resolve };
      this.wake();
    });
  }

  private applySwap(): void {
    const swap = this.pendingSwap;
    if (!swap) return;
    this.pendingSwap = null;
    const old = this.model;
    this.model = swap.model;
    swap.resolve(old);
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.loop = this.runForever();
  }

  /** Finishes the capture in inference, records it, and returns; queued captures stay queued. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.loop;
    this.applySwap();
  }

  wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  /** The loop never dies: an unexpected error (e.g. the database refusing reads) is logged and retried. */
  private async runForever(): Promise<void> {
    while (this.running) {
      try {
        await this.run();
      } catch (err) {
        this.o.logger.error({ err: (err as Error).message, stack: (err as Error).stack }, 'capture loop error; retrying in 5 s');
        await sleep(5000);
      }
    }
  }

  private next(exclude: string | null): QueuedCapture | null {
    return this.stages.queued(2 + this.admission.size).find((c) => c.file !== exclude && !this.admission.waiting(c.file)) ?? null;
  }

  private async run(): Promise<void> {
    let current: InFlight<M> | null = null;
    // On stop, a capture already in inference is still recorded.
    while (this.running || current?.scoring) {
      if (!current) {
        this.applySwap(); // nothing in flight: the safe moment to switch models
        const capture = this.model ? this.next(null) : null;
        if (!capture || !this.model) {
          await new Promise<void>((resolve) => (this.wakeUp = resolve));
          continue;
        }
        current = this.launch(this.model, capture);
      }
      const prepared = await current.prepared;
      if (!current.scoring) {
        current.scoring = this.admit(current, prepared);
        if (!current.scoring) {
          current = null;
          continue;
        }
      }
      // Prepare the next capture while this one is in inference (unless a model switch waits:
      // then the next capture is prepared for the new model).
      const nextCapture: QueuedCapture | null = this.running && !this.pendingSwap ? this.next(current.capture.file) : null;
      let next: InFlight<M> | null = nextCapture ? this.launch(current.model, nextCapture) : null;
      const scored = await current.scoring;
      // A preparation that finished during inference was collected as it ended (D26); its promise
      // chain settles within this turn's microtasks, after this continuation: let it.
      if (next && !next.ready) await new Promise<void>((resolve) => setImmediate(resolve));
      // Keep inference busy: the next capture goes in before this one is recorded, so that the
      // record's fsync is not a gap between inferences.
      if (next?.ready && this.running) {
        next.scoring = this.admit(next, next.ready);
        if (!next.scoring) next = null;
      }
      await this.record(current, prepared, scored);
      current = next;
    }
    // Stopping with a capture prepared but not scored: it stays queued; its tensor is freed.
    if (current) void current.prepared.then((p) => this.stages.release(p));
  }

  private launch(model: M, capture: QueuedCapture): InFlight<M> {
    const flight: InFlight<M> = { capture, model, startedAt: performance.now(), prepared: this.stages.prepare(capture, model), ready: null, scoring: null };
    void flight.prepared.then((p) => (flight.ready = p));
    return flight;
  }

  /** Its scoring (an error's result at once), or null when the capture is not scored now (admission.ts). */
  private admit(flight: InFlight<M>, prepared: PreparedCapture): Promise<Scored> | null {
    if (!this.admission.admit(prepared)) {
      this.stages.release(prepared);
      return null;
    }
    return prepared.ok ? this.stages.score(prepared, flight.model, flight.startedAt) : Promise.resolve(failedScore(prepared.file, prepared.error));
  }

  private async record(flight: InFlight<M>, prepared: PreparedCapture, scored: Scored): Promise<void> {
    try {
      this.stages.record(flight.capture, flight.model, prepared, scored);
      this.setRecordFault(null);
    } catch (err) {
      // The database refused the row (disk full, I/O error): the capture stays queued and is
      // retried; nothing is published that is not recorded.
      this.setRecordFault(`database: ${(err as Error).message}`);
      this.o.logger.error({ err: (err as Error).message, file: flight.capture.file }, 'could not record verdict; will retry');
      await sleep(1000);
    }
  }

  private setRecordFault(message: string | null): void {
    if (message === this.recordFault) return;
    this.recordFault = message;
    this.o.events.emit('fault.changed', { source: 'record', message });
  }
}
