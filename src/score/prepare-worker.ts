import { parentPort, workerData } from 'node:worker_threads';
import type { DecodeOptions } from '../decode/tiff.js';
import { Preprocessor, type TensorContract } from '../preprocess/preprocessor.js';
import { wasmKernelAvailable, WasmResizer } from '../preprocess/wasm-resize.js';
import { Mailbox, PENDING, READY, type MailboxShape } from './mailbox.js';
import { prepareCapture, ScratchBuffers, type PreparedData } from './prepare.js';
import { lowerThreadPriority, type ThreadPriority } from './priority.js';

/**
 * The preparation worker: reading, hashing, decoding and preprocessing run here, so the daemon's
 * event loop (MQTT keep-alives, the watchdog, the watcher) is never blocked by a capture.
 */

/**
 * `tensor`, in a SharedArrayBuffer, is written in place and not sent back (the sender has it).
 * `slot`: where in the mailbox the result goes (−1: none, answer with a message).
 */
export interface PrepareRequest { id: number; file: string; contract: TensorContract; decode: DecodeOptions; tensor: Float32Array; slot: number }
/** A result without its tensor: that is the request's, written in place. */
export type WireResult = Exclude<PreparedData, { ok: true }> | Omit<Extract<PreparedData, { ok: true }>, 'tensor'>;
/** A result, its mailbox slot (the result is there), or this thread's priority (id 0, first). */
export type PrepareResponse = { id: number; result: WireResult } | { id: number; slot: number } | { id: 0; thread: ThreadPriority | null };
export interface PrepareWorkerData { niceIncrement: number; mailbox: { buffer: SharedArrayBuffer; shape: MailboxShape } }

if (!parentPort) throw new Error('prepare-worker.ts must run as a worker thread');
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
    const result = await prepareCapture(req.file, pre, req.decode, req.tensor, scratch);
    let wire: WireResult = result;
    if (result.ok) {
      const { tensor: _inPlace, ...rest } = result;
      wire = rest;
    }
    answer(req, wire);
  })();
});

/**
 * Into the request's mailbox slot, waking the main thread only if it asked (WAKE): while it has
 * not, it collects the result itself when inference ends (mailbox.ts). Too big for the slot, or no
 * slot: a message.
 */
function answer(req: PrepareRequest, result: WireResult): void {
  if (req.slot >= 0 && mailbox.write(req.slot, result)) {
    const was = Atomics.compareExchange(mailbox.states, req.slot, PENDING, READY);
    if (was === PENDING) return;
    Atomics.store(mailbox.states, req.slot, READY); // was WAKE
    port.postMessage({ id: req.id, slot: req.slot } satisfies PrepareResponse);
    return;
  }
  port.postMessage({ id: req.id, result } satisfies PrepareResponse);
}
