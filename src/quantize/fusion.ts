import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { decodeModel } from './graph.js';

/** Operator counts of the graph ONNX Runtime actually runs (`graphOptimizationLevel: 'all'`). */
export async function optimisedOps(modelPath: string): Promise<Record<string, number>> {
  const dir = await mkdtemp(join(tmpdir(), 'xray-qc-fusion-'));
  try {
    const out = join(dir, 'optimised.onnx');
    const session = await ort.InferenceSession.create(modelPath, { graphOptimizationLevel: 'all', optimizedModelFilePath: out, logSeverityLevel: 3 });
    await session.release();
    const model = decodeModel(await readFile(out), out);
    const counts: Record<string, number> = {};
    for (const n of model.graph!.node ?? []) counts[n.opType!] = (counts[n.opType!] ?? 0) + 1;
    return counts;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Float convolutions ONNX Runtime may run under other names after its own fusions. */
export const FLOAT_CONV_OPS = ['Conv', 'FusedConv', 'NhwcFusedConv'];
