import type { Logger } from 'pino';
import type { EventBus } from '../events.js';
import type { PreparedCapture, PreparedOk, QueuedCapture, Scored, StationEvents } from './messages.js';

/** What the loop schedules; the stages themselves are elsewhere (service/station.ts wires them). */
export interface LoopStages<M> {
  /** The oldest queued captures, at most `n`. */
  queued(n: number): QueuedCapture[];
  /** This content of this file has an audit row already. */
  audited(file: string, sha256: string): boolean;
  dequeue(file: string): void;
  /** Preparation for `model` (never throws: a failure is the result). */
  prepare(capture: QueuedCapture, model: M): Promise<PreparedCapture>;
  /** A preparation that will not be scored: its tensor is free again. */
  release(prepared: PreparedCapture): void;
  /** Inference + decision (never throws). `startedAt`: when its preparation began. */
  score(prepared: PreparedOk, model: M, startedAt: number): Promise<Scored>;
  /** The audit row and its outbox message, one transaction that also dequeues it; throws if the database refuses. */
  record(capture: QueuedCapture, model: M, prepared: PreparedCapture, scored: Scored): void;
}

export interface LoopOptions {
  logger: Logger;
  events: EventBus<StationEvents>;
  /** How long a capture that reads as truncated waits for its writer before it is recorded as such. */
  incompleteGraceMs: number;
}
