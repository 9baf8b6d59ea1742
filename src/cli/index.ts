import { Command, CommanderError } from 'commander';
import { XrayError } from '../errors.js';
import { registerAudit } from './audit.js';
import { registerCollect } from './collect.js';
import { registerDemo } from './demo.js';
import { registerModel } from './model.js';
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
  registerDemo(program);
  registerTraining(program);
  registerCollect(program);
  return program;
}

/** Runs the CLI; resolves with the exit status. Coded errors print `CODE: message`. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof XrayError) {
      process.stderr.write(`xray-qc: ${err.code}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
