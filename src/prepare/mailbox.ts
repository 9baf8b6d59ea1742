/**
 * Results of the preparation worker handed over through shared memory instead of a message, so
 * that the worker does not wake the main thread while inference has both cores (D26).
 *
 * Why: `postMessage` from a worker appends to the main thread's port queue and signals the event
 * loop while holding that queue's mutex (Node 20, `MessagePortData::AddToIncomingQueue`). The
 * main thread wakes at once, preempting the low-priority preparation thread (niceness 10, D22)
 * inside that lock; the main thread then blocks on the mutex until the preparation thread runs
 * again, which beside two busy inference threads took up to ~25 ms (perf sched_switch stacks:
 * `uv_mutex_lock` in `MessagePort::OnMessage`, woken by the preparation thread).
 *
 * Each in-flight request owns a slot: one Int32 state and a payload area for its result as JSON.
 * PENDING → READY (written by the worker, nobody woken) or PENDING → WAKE (the main thread wants a
 * message) → READY + a message. Compare-exchange on the state decides which side saw what, so a
 * result is delivered exactly once.
 */
export const PENDING = 0;
export const READY = 1;
export const WAKE = 2;

export interface MailboxShape { slots: number; slotBytes: number }

/** Byte layout: states (Int32 per slot), then per slot an Int32 length and the payload. */
export class Mailbox {
  readonly states: Int32Array;
  private readonly lengths: Int32Array;
  private readonly bytes: Uint8Array;

  constructor(readonly buffer: SharedArrayBuffer, readonly shape: MailboxShape) {
    const { slots, slotBytes } = shape;
    this.states = new Int32Array(buffer, 0, slots);
    this.lengths = new Int32Array(buffer, 4 * slots, slots);
    this.bytes = new Uint8Array(buffer, 8 * slots, slots * slotBytes);
  }

  static create(shape: MailboxShape): Mailbox {
    return new Mailbox(new SharedArrayBuffer(8 * shape.slots + shape.slots * shape.slotBytes), shape);
  }

  /** Worker side: writes `value` into `slot`; false when it does not fit (send it as a message). */
  write(slot: number, value: unknown): boolean {
    const text = JSON.stringify(value);
    const area = this.bytes.subarray(slot * this.shape.slotBytes, (slot + 1) * this.shape.slotBytes);
    const { read, written } = new TextEncoder().encodeInto(text, area);
    if (read < text.length) return false;
    this.lengths[slot] = written;
    return true;
  }

  /** Main side: the value a READY slot holds. */
  read<T>(slot: number): T {
    const start = slot * this.shape.slotBytes;
    // TextDecoder does not read shared memory directly: copy the (small) payload out first.
    return JSON.parse(new TextDecoder().decode(this.bytes.slice(start, start + this.lengths[slot]))) as T;
  }
}
