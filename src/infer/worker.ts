import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { FromWorker, GraphContract, Provider, ToWorker } from './messages.js';
import type { HeatMap } from '../pipeline/messages.js';
import { isShared, transferList } from '../transfer.js';
import { providerOption } from './providers.js';
import { lowerThreadPriority } from '../thread-priority.js';

/**
 * The inference worker: owns one ONNX Runtime session. `session.run` is a synchronous native call
 * that would block the daemon's event loop for the whole inference; here it blocks only this thread.
 */

if (!parentPort) throw new Error('worker.ts must run as a worker thread');
const port = parentPort;
let session: ort.InferenceSession | null = null;
let graph: GraphContract | null = null;
/** This thread's copy of a shared input (see `runnable`); the warm-up's buffer to begin with. */
let own: Float32Array | null = null;

const send = (message: FromWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);

function checkGraph(s: ort.InferenceSession, g: GraphContract): string | null {
  const input = s.inputMetadata.find((m) => m.name === g.inputName);
  if (!input) return `input.name: graph has no input '${g.inputName}' (it has ${s.inputNames.join(', ')})`;
  if (s.inputNames.length !== 1) return `input: graph has ${s.inputNames.length} inputs, expected 1`;
  if (input.isTensor) {
    if (input.type !== 'float32') return `input: graph input is ${input.type}, expected float32`;
    const want = [1, 3, g.height, g.width];
    const fields = ['batch', 'channels', 'input.height', 'input.width'];
    if (input.shape.length !== 4) return `input: graph input has rank ${input.shape.length}, expected 4 (NCHW)`;
    for (let i = 0; i < 4; i++) {
      const dim = input.shape[i];
      if (typeof dim === 'number' && dim >= 0 && dim !== want[i]) {
        return `${fields[i]}: graph input dimension ${i} is ${dim}, manifest expects ${want[i]}`;
      }
    }
  }
  const output = s.outputMetadata.find((m) => m.name === g.outputName);
  if (!output) return `output.name: graph has no output '${g.outputName}' (it has ${s.outputNames.join(', ')})`;
  if (output.isTensor) {
    const last = output.shape[output.shape.length - 1];
    if (typeof last === 'number' && last >= 0 && last <= g.abnormalIndex) {
      return `output.abnormal_index: ${g.abnormalIndex} is outside the graph output's ${last} classes`;
    }
  }
  if (g.heatmapName) {
    const heat = s.outputMetadata.find((m) => m.name === g.heatmapName);
    if (!heat) return `outputs.heatmap: graph has no output '${g.heatmapName}' (it has ${s.outputNames.join(', ')})`;
    if (heat.isTensor && heat.shape.length !== 3) return `outputs.heatmap: graph output '${g.heatmapName}' has rank ${heat.shape.length}, expected 3 (1×h×w)`;
  }
  return null;
}

/** The heat-map output as a plain h×w map, or null when the graph has none. */
function heatMapOf(result: ort.InferenceSession.OnnxValueMapType, g: GraphContract): HeatMap | null {
  if (!g.heatmapName) return null;
  const t = result[g.heatmapName];
  const [, height, width] = t.dims;
  const data = t.data instanceof Float32Array ? t.data.slice() : Float32Array.from(t.data as ArrayLike<number>);
  return { data, height: Number(height), width: Number(width) };
}

async function load(message: Extract<ToWorker, { type: 'load' }>): Promise<void> {
  const warnings: string[] = [];
  // A shadow model yields to the active one: ONNX Runtime's threads, created below, inherit this thread's niceness.
  const lowered = lowerThreadPriority(message.niceIncrement ?? 0);
  if (lowered && 'error' in lowered) warnings.push(`could not lower the inference thread's priority: ${lowered.error}`);
  for (const provider of message.providers) {
    let candidate: ort.InferenceSession;
    try {
      candidate = await ort.InferenceSession.create(message.modelPath, {
        executionProviders: [providerOption(provider, message.deviceId ?? 0)] as never,
        graphOptimizationLevel: 'all',
        ...(message.intraOpThreads ? { intraOpNumThreads: message.intraOpThreads } : {}),
        // ONNX Runtime's threads spin between parallel sections by default; beside our preparation
        // thread on few cores that steals from both (docs/performance.md): off unless asked for.
        ...(message.spinning ? {} : { extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } } }),
      });
    } catch (err) {
      warnings.push(`provider ${provider} could not load the model: ${(err as Error).message.split('\n')[0]}`);
      continue;
    }
    const mismatch = checkGraph(candidate, message.graph);
    if (mismatch) {
      await candidate.release();
      send({ type: 'load-failed', code: 'MODEL_GRAPH_MISMATCH', message: mismatch, warnings });
      return;
    }
    const started = performance.now();
    const warm = new Float32Array(3 * message.graph.height * message.graph.width);
    try {
      const out = await candidate.run({ [message.graph.inputName]: new ort.Tensor('float32', warm, [1, 3, message.graph.height, message.graph.width]) });
      const values = Array.from(out[message.graph.outputName].data as ArrayLike<number>);
      if (!values.every(Number.isFinite)) {
        await candidate.release();
        send({ type: 'load-failed', code: 'MODEL_LOAD_FAILED', message: `warm-up output is not finite: [${values.join(', ')}]`, warnings });
        return;
      }
    } catch (err) {
      await candidate.release();
      warnings.push(`provider ${provider} failed its warm-up run: ${(err as Error).message.split('\n')[0]}`);
      continue;
    }
    if (session) await session.release();
    own = warm;
    session = candidate;
    graph = message.graph;
    send({ type: 'loaded', provider: provider as Provider, warnings, warmupMs: performance.now() - started });
    return;
  }
  send({ type: 'load-failed', code: 'MODEL_LOAD_FAILED', message: warnings.join('; ') || 'no execution provider configured', warnings });
}

/**
 * ONNX Runtime takes no tensor in shared memory (`Invalid argument`): one arriving in a
 * SharedArrayBuffer (the daemon's way: nothing 24 MB large then crosses into the main thread,
 * whose V8 heap otherwise ran a full collection for the external memory of about every capture)
 * is copied into this thread's own buffer (~2 ms at 2000×1000). Any other input is used in place
 * and handed back.
 */
function runnable(input: Float32Array): Float32Array {
  if (!isShared(input)) return input;
  if (own?.length !== input.length) own = new Float32Array(input.length);
  own.set(input);
  return own;
}

async function run(message: Extract<ToWorker, { type: 'run' }>): Promise<void> {
  const input = message.input;
  const handBack = isShared(input) ? null : input;
  if (!session || !graph) {
    send({ type: 'run-failed', id: message.id, message: 'no model loaded', input: handBack }, transferList(input));
    return;
  }
  const started = performance.now();
  try {
    const feeds = { [graph.inputName]: new ort.Tensor('float32', runnable(input), [1, 3, graph.height, graph.width]) };
    const result = await session.run(feeds, graph.heatmapName ? [graph.outputName, graph.heatmapName] : [graph.outputName]);
    const data = result[graph.outputName].data;
    const output = data instanceof Float32Array ? data.slice() : Float32Array.from(data as ArrayLike<number>);
    const heatmap = heatMapOf(result, graph);
    send({ type: 'result', id: message.id, output, heatmap, ms: performance.now() - started, input: handBack }, transferList(output, input, ...(heatmap ? [heatmap.data] : [])));
  } catch (err) {
    send({ type: 'run-failed', id: message.id, message: (err as Error).message.split('\n')[0], input: handBack }, transferList(input));
  }
}

// Messages are handled one at a time, in order: a load never overlaps a run.
let queue: Promise<void> = Promise.resolve();
port.on('message', (message: ToWorker) => {
  queue = queue.then(async () => {
    if (message.type === 'load') await load(message);
    else if (message.type === 'run') await run(message);
    else send({ type: 'pong', id: message.id });
  });
});
