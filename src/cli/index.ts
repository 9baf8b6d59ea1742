import { Command, CommanderError } from 'commander';
import { ERROR_CODES, type ErrorCode } from '../errors.js';
import { registerAudit } from './audit.js';
import { registerCollect } from './collect.js';
import { registerDemo } from './demo.js';
import { registerModel } from './model.js';
import { registerModels } from './models.js';
import { registerQuality } from './quality.js';
import { registerSyncCommands } from './registry.js';
import { registerScoring } from './score.js';
import { registerRun, packageVersion } from './run.js';
import { registerTools } from './tools.js';
import { registerTraining } from './train.js';

export function buildProgram(): Command {
  const program = new Command('xray-qc')
    .description('inline X-ray quality control for fuel-cell electrodes')
    .version(packageVersion())
    .enablePositionalOptions()
    .exitOverride();
  registerRun(program);
  registerScoring(program);
  registerAudit(program);
  registerQuality(program);
  registerTools(program);
  registerModel(program);
  registerSyncCommands(program);
  registerModels(program);
  registerDemo(program);
  registerTraining(program);
  registerCollect(program);
  return program;
}

/**
 * Codes that mean the command failed while doing its work — our own bug, or the machine (a worker
 * that died, ONNX Runtime failing mid-run, a station that could not start): exit 1. Every other
 * code says that what the command was given (arguments, config, a file, a bundle) was refused:
 * exit 2. README "Exit status".
 */
const OWN_FAILURES: ReadonlySet<ErrorCode> = new Set(['INTERNAL_ERROR', 'INFER_FAILED', 'INFER_WORKER_EXITED', 'PREPARE_WORKER_EXITED', 'START_FAILED']);

export function exitStatusFor(code: ErrorCode): 1 | 2 {
  return OWN_FAILURES.has(code) ? 1 : 2;
}

function codeOf(err: unknown): ErrorCode | null {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code in ERROR_CODES ? code as ErrorCode : null;
}

/**
 * Runs the CLI; resolves with the exit status: 0 done, 2 refused or bad input (a usage error, a
 * coded refusal: `xray-qc: CODE: message`), 1 our own failure (an uncoded exception: rejected to
 * bin/xray-qc.js, which prints it and exits 1).
 */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    // commander has printed its message; help and --version are 0, every usage error is bad input
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    const code = codeOf(err);
    if (code) {
      process.stderr.write(`xray-qc: ${code}: ${(err as Error).message.split('\n').join('\n  ')}\n`);
      return exitStatusFor(code);
    }
    throw err;
  }
}
