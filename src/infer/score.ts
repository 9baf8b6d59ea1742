import { decideCapture } from '../decide/capture.js';
import { toXrayError } from '../errors.js';
import type { TensorContract } from '../model/contract.js';
import { failedScore, type PreparedCapture, type PreparedOk, type Scored } from '../pipeline/messages.js';
import type { Model, ModelOutput } from './model.js';

/** What inference needs of the preparation stage (prepare/stage.ts): its tensors and its one knob. */
export interface TensorLender {
  holds(p: PreparedOk): boolean;
  release(p: PreparedCapture): void;
  setInferenceBusy(on: boolean): void;
}

/**
 * Infer + decide for one prepared capture: the model runs on its tensor (given back to the
 * preparation stage as soon as the run ends), then the decision. Every failure is the capture's
 * coded `error` result. `startedAt`: when its preparation began (the total's start).
 */
export async function scorePrepared(model: Model, prepared: PreparedCapture, lender: TensorLender, startedAt: number): Promise<Scored> {
  if (!prepared.ok) return failedScore(prepared.file, prepared.error);
  if (!lender.holds(prepared)) {
    // scored or released already: its tensor may hold another capture by now
    return failedScore(prepared.file, { code: 'INFER_FAILED', message: 'this preparation was already scored or discarded; prepare the capture again' });
  }
  try {
    const t0 = performance.now();
    let output: ModelOutput;
    lender.setInferenceBusy(true);
    try {
      output = await model.run(prepared.tensor);
    } finally {
      lender.release(prepared);
      lender.setInferenceBusy(false);
    }
    const t1 = performance.now();
    return decideCapture(prepared, output, model.bundle.manifest, model.ref, { inferMs: t1 - t0, totalMs: t1 - startedAt });
  } catch (err) {
    const e = toXrayError(err, 'INFER_FAILED');
    return failedScore(prepared.file, { code: e.code, message: e.message });
  }
}

/** Prepare + infer + decide for one file (`xray-qc score`, golden samples). */
export async function scoreFile(file: string, model: Model, stage: TensorLender & { prepare(file: string, contract: TensorContract): Promise<PreparedCapture> }): Promise<Scored> {
  const t0 = performance.now();
  return scorePrepared(model, await stage.prepare(file, model.contract), stage, t0);
}
