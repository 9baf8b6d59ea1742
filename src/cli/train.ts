import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';

/**
 * `xray-qc train|evaluate …`: the training host's commands, which belong to PyTorch (training/,
 * module xray_qc_train). They run `python3 -m xray_qc_train` (the interpreter from
 * XRAY_QC_PYTHON), with every argument passed on and this CLI named in XRAY_QC_CLI, so that
 * bounds and packing go through the station's own code.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NEEDS = 'torch torchvision cv2 tifffile numpy';
const INSTALL = 'install python3-torch python3-torchvision python3-opencv python3-tifffile python3-numpy (Debian), or set XRAY_QC_PYTHON to an interpreter that has them';

export function registerTraining(program: Command): void {
  for (const [name, what] of [
    ['train', 'train on labelled captures (labels.csv or <bundle>/<normal|abnormal>/) and write a station bundle with its model card'],
    ['evaluate', "leave-one-bundle-out evaluation: the paper's Table 1 on your data (table1.csv/.md, folds.json, predictions.csv)"],
  ] as const) {
    program.command(name).description(`${what} (PyTorch; --help for the options)`)
      .helpOption(false).allowUnknownOption().allowExcessArguments()
      .argument('[args...]')
      .action(async (args: string[]) => {
        process.exitCode = await runTraining(name, args);
      });
  }
}

/** The interpreter's exit status; 2 with one line when it or its packages are missing. */
export async function runTraining(cmd: 'train' | 'evaluate', args: string[]): Promise<number> {
  const python = process.env.XRAY_QC_PYTHON ?? 'python3';
  const env = {
    ...process.env,
    PYTHONPATH: [join(ROOT, 'training'), process.env.PYTHONPATH].filter(Boolean).join(':'),
    XRAY_QC_CLI: process.env.XRAY_QC_CLI ?? `"${process.execPath}" "${join(ROOT, 'bin', 'xray-qc.js')}"`,
  };
  const probe = spawnSync(python, ['-c', `import ${NEEDS.split(' ').join(', ')}`], { env, encoding: 'utf8' });
  if (probe.error) {
    process.stderr.write(`xray-qc ${cmd}: no Python interpreter "${python}" (${(probe.error as NodeJS.ErrnoException).code}): ${INSTALL}\n`);
    return 2;
  }
  if (probe.status !== 0) {
    const missing = /No module named '([^']+)'/.exec(probe.stderr)?.[1] ?? probe.stderr.trim().split('\n').at(-1);
    process.stderr.write(`xray-qc ${cmd}: ${python} lacks ${missing}: ${INSTALL}\n`);
    return 2;
  }
  if (!existsSync(join(ROOT, 'training', 'xray_qc_train'))) {
    process.stderr.write(`xray-qc ${cmd}: the training package is missing at ${join(ROOT, 'training')}\n`);
    return 2;
  }
  return new Promise((resolve) => {
    const child = spawn(python, ['-m', 'xray_qc_train', cmd, ...args], { env, stdio: 'inherit' });
    const forward = (sig: NodeJS.Signals): void => { child.kill(sig); };
    process.on('SIGINT', forward).on('SIGTERM', forward);
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward).off('SIGTERM', forward);
      resolve(code ?? (signal ? 128 + 2 : 1));
    });
  });
}
