import { parentPort, workerData } from 'node:worker_threads';
import type { DecodeOptions } from '../decode/tiff.js';
import type { TensorContract } from '../model/contract.js';
import type { PreparedCapture, PreparedFailed, PreparedOk } from '../pipeline/messages.js';
import { prepareCapture, ScratchBuffers, type FaultInjection } from './capture.js';
import { Mailbox, PENDING, READY, type MailboxShape } from './mailbox.js';
import { Preprocessor } from './preprocessor.js';
import { lowerThreadPriority, type ThreadPriority } from '../thread-priority.js';
import { wasmKernelAvailable, WasmResizer } from './wasm-resize.js';

/**
 * The preparation worker: reading, hashing, decoding and preprocessing run here, so the daemon's
 * event loop (MQTT keep-alives, the watchdog, the watcher) is never blocked by a capture.
 */

/**
 * `tensor`, in a SharedArrayBuffer, is written in place and not sent back (the sender has it).
 * `slot`: where in the mailbox the result goes (−1: none, answer with a message).
 */
export interface PrepareRequest { id: number; file: string; contract: TensorContract; decode: DecodeOptions; tensor: Float32Array; slot: number }
/**
 * A result (a `PreparedCapture`; sent as a message, its tensor is the request's shared memory,
 * not a copy), its mailbox slot (the result is there, all but the tensor: see `withoutTensor`), or
 * this thread's priority (id 0, first).
 */
export type PrepareResponse = { id: number; result: PreparedCapture } | { id: number; slot: number } | { id: 0; thread: ThreadPriority | null };
export interface PrepareWorkerData { niceIncrement: number; mailbox: { buffer: SharedArrayBuffer; shape: MailboxShape }; inject: FaultInjection | null }

/** A result as the mailbox holds it: everything but the tensor, which both threads already share. */
export type MailboxResult = PreparedFailed | Omit<PreparedOk, 'tensor'>;

export function withoutTensor(p: PreparedCapture): MailboxResult {
  if (!p.ok) return p;
  const { tensor: _shared, ...rest } = p;
  return rest;
}

if (!parentPort) throw new Error('prepare/worker.ts must run as a worker thread');
const port = parentPort;
const data = workerData as PrepareWorkerData;
const mailbox = new Mailbox(data.mailbox.buffer, data.mailbox.shape);
// First: this thread's priority (it yields to inference on shared cores), reported as id 0.
port.postMessage({ id: 0, thread: lowerThreadPriority(data.niceIncrement) } satisfies PrepareResponse);
const preprocessors = new Map<string, Preprocessor>();
// One kernel and one pair of scratch buffers for this thread, shared by every model's preprocessor.
const kernel = wasmKernelAvailable() ? new WasmResizer() : null;
const scratch = new ScratchBuffers();

port.on('message', (req: PrepareRequest) => {
  void (async () => {
    const key = JSON.stringify(req.contract);
    let pre = preprocessors.get(key);
    if (!pre) {
      if (preprocessors.size > 4) preprocessors.clear(); // a few models at most (switches)
      pre = new Preprocessor(req.contract, kernel);
      preprocessors.set(key, pre);
    }
    answer(req, await prepareCapture(req.file, pre, req.decode, req.tensor, scratch, data.inject ?? undefined));
  })();
});

/**
 * Into the request's mailbox slot, waking the main thread only if it asked (WAKE): while it has
 * not, it collects the result itself when inference ends (mailbox.ts). Too big for the slot, or no
 * slot: a message.
 */
function answer(req: PrepareRequest, result: PreparedCapture): void {
  if (req.slot >= 0 && mailbox.write(req.slot, withoutTensor(result))) {
    const was = Atomics.compareExchange(mailbox.states, req.slot, PENDING, READY);
    if (was === PENDING) return;
    Atomics.store(mailbox.states, req.slot, READY); // was WAKE
    port.postMessage({ id: req.id, slot: req.slot } satisfies PrepareResponse);
    return;
  }
  port.postMessage({ id: req.id, result } satisfies PrepareResponse);
}
