import { basename } from 'node:path';
import type { DecodeOptions } from '../decode/tiff.js';
import type { Model, ModelOptions } from '../infer/model.js';
import { OnnxModel } from '../infer/onnx-model.js';
import { scoreFile } from '../infer/score.js';
import type { Scored } from '../pipeline/messages.js';
import { PrepareStage } from '../prepare/stage.js';

/** A model and a preparation stage for scoring files from the command line (`score`, `model golden`). */
export class ScoringSession {
  private constructor(readonly model: Model, private readonly stage: PrepareStage) {}

  static async open(path: string, options: ModelOptions & { decode?: DecodeOptions } = {}): Promise<ScoringSession> {
    const stage = new PrepareStage({ decode: options.decode });
    await stage.start();
    try {
      return new ScoringSession(await OnnxModel.open(path, options), stage);
    } catch (err) {
      await stage.stop();
      throw err;
    }
  }

  score(file: string): Promise<Scored> {
    return scoreFile(file, this.model, this.stage);
  }

  async close(): Promise<void> {
    await this.model.close();
    await this.stage.stop();
  }
}

/**
 * `score --json`'s line: the result as it is, but the heat map's 8-bit cells as a plain array
 * (row-major, `width × height` numbers 0–255; value = cell / 255 · scale) — a typed array through
 * JSON.stringify became an object keyed by index, ~20 KB a line.
 */
export function scoredJson(r: Scored): string {
  if (r.verdict === 'error' || !r.heatmap) return JSON.stringify(r);
  return JSON.stringify({ ...r, heatmap: { ...r.heatmap, cells: Array.from(r.heatmap.cells) } });
}

/** One human-readable line for a result. */
export function formatResult(r: Scored): string {
  if (r.verdict === 'error') return `${basename(r.file)}  ERROR  ${r.error.code}: ${r.error.message}`;
  const model = `${r.model.name} v${r.model.version}${r.model.untrained ? ' (UNTRAINED demo model)' : r.model.synthetic ? ' (trained on synthetic captures)' : ''}`;
  return `${basename(r.file)}  ${r.verdict.toUpperCase().padEnd(4)}  ${r.reason.padEnd(9)}  p_abnormal=${r.p_abnormal.toFixed(4)}  threshold=${r.threshold}  ${model}  ${r.timings_ms.total.toFixed(0)} ms`;
}
