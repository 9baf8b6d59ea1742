import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../src/cli/index.js';
import type { Command } from 'commander';
import { CLI, cli, tempDir, type CliResult } from './helpers.js';

/**
 * One exit-status convention for every command (README "Exit status"): 0 done, 2 refused or bad
 * input, 1 our own failure. Every leaf command of the CLI has at least one refusal case here —
 * a new command without one fails the coverage check — and each refusal must exit 2 with a
 * short message on stderr and no stack trace.
 */

function leaves(c: Command, prefix: string[] = []): string[] {
  const subs = c.commands;
  const self = prefix.length && (c as unknown as { _actionHandler: unknown })._actionHandler ? [prefix.join(' ')] : [];
  return subs.length ? [...self, ...subs.flatMap((s) => leaves(s, [...prefix, s.name()]))] : [prefix.join(' ')];
}

function run(args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, XRAY_QC_REVIEW_TOKEN: '' } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    p.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('exit status: every command refuses bad input with exit 2 and one clear line', () => {
  let root: string;
  let cases: Array<{ command: string; args: string[]; stderr: RegExp }>;

  beforeAll(() => {
    root = tempDir('xray-qc-exit-');
    const tiny = join(root, 'tiny');
    expect(cli(['model', 'demo', '--tiny', '--out', tiny]).code).toBe(0);
    const repo = join(root, 'models');
    mkdirSync(repo, { recursive: true });
    const config = join(root, 'config.yaml');
    writeFileSync(config, `station_id: s1\ncapture:\n  dir: ./captures\nmodel:\n  dir: ./models\ndatabase:\n  path: ./audit.db\nmqtt:\n  url: mqtt://127.0.0.1:1\n`);
    const config2 = join(root, 'config2.yaml'); // no database ever created (label set creates config's)
    writeFileSync(config2, `station_id: s1\ncapture:\n  dir: ./captures\nmodel:\n  dir: ./models\ndatabase:\n  path: ./never.db\nmqtt:\n  url: mqtt://127.0.0.1:1\n`);
    const bad = join(root, 'bad.yaml');
    writeFileSync(bad, 'station_id: s1\nnot_a_key: 1\n');
    const nodb = join(root, 'no.db');
    const nofile = join(root, 'missing.tif');
    const keys = join(root, 'keys');
    expect(cli(['model', 'keygen', '--out', keys]).code).toBe(0);
    cases = [
      { command: 'run', args: ['run', '--config', bad], stderr: /not_a_key/ },
      { command: 'score', args: ['score', '--model', join(root, 'nope'), nofile], stderr: /MODEL_NOT_FOUND/ },
      { command: 'score', args: ['score', '--model', tiny, nofile], stderr: /./ },
      { command: 'preprocess', args: ['preprocess', '--model', tiny, nofile], stderr: /give --out/ },
      { command: 'audit list', args: ['audit', 'list', '--db', nodb], stderr: /no such audit database/ },
      { command: 'audit show', args: ['audit', 'show', '--db', nodb, 'x'], stderr: /no such audit database/ },
      { command: 'audit summary', args: ['audit', 'summary', '--db', nodb, '--since', 'yesterday-ish'], stderr: /./ },
      { command: 'audit drift', args: ['audit', 'drift', '--db', nodb], stderr: /no such audit database/ },
      { command: 'audit accuracy', args: ['audit', 'accuracy', '--db', nodb], stderr: /no such audit database/ },
      { command: 'audit export', args: ['audit', 'export', '--db', nodb], stderr: /no such audit database/ },
      { command: 'label set', args: ['label', 'set', '--config', config, 'seq:1', 'broken'], stderr: /LABEL_INVALID/ },
      { command: 'label import', args: ['label', 'import', '--config', config, join(root, 'none.csv')], stderr: /LABEL_INVALID/ },
      { command: 'label list', args: ['label', 'list', '--db', nodb], stderr: /no such audit database/ },
      { command: 'review serve', args: ['review', 'serve', '--config', config, '--listen', 'nowhere'], stderr: /./ },
      { command: 'review list', args: ['review', 'list', '--db', nodb], stderr: /no such audit database/ },
      { command: 'bounds', args: ['bounds', '--low', '200', root], stderr: /expected a number/ },
      { command: 'synth', args: ['synth', '--out', join(root, 's'), '--count', '0'], stderr: /expected an integer/ },
      { command: 'model pack', args: ['model', 'pack', '--onnx', join(tiny, 'model.onnx'), '--out', join(root, 'p'), '--name', 'x', '--version', '1'], stderr: /PACK_INVALID_ARGUMENT: --bounds is required/ },
      { command: 'model demo', args: ['model', 'demo', '--no-such-option'], stderr: /unknown option/ },
      { command: 'model quantize', args: ['model', 'quantize', join(root, 'nope'), '--calibration', root, '--out', join(root, 'q')], stderr: /[A-Z_]+: / },
      { command: 'model keygen', args: ['model', 'keygen', '--out', keys], stderr: /already/ },
      { command: 'model golden', args: ['model', 'golden', join(root, 'nope'), nofile], stderr: /MODEL_NOT_FOUND/ },
      { command: 'model sign', args: ['model', 'sign', '--key', join(keys, 'public.pem'), tiny], stderr: /not an ed25519 private key/ },
      { command: 'registry publish', args: ['registry', 'publish', '--registry', join(root, 'reg'), join(root, 'nope')], stderr: /MODEL_/ },
      { command: 'registry serve', args: ['registry', 'serve', '--registry', root, '--port', '70000'], stderr: /expected an integer/ },
      { command: 'models list', args: ['models', 'list', '--config', bad], stderr: /CONFIG_INVALID/ },
      { command: 'models unhold', args: ['models', 'unhold', '--config', join(root, 'none.yaml')], stderr: /CONFIG_INVALID/ },
      { command: 'models shadow', args: ['models', 'shadow', '--config', config, '7'], stderr: /USAGE_INVALID: no bundle '7'/ },
      { command: 'models compare', args: ['models', 'compare', '--config', config2], stderr: /no such audit database/ },
      { command: 'models activate', args: ['models', 'activate', '--config', config, '1'], stderr: /USAGE_INVALID: no bundle '1'.*models install/ },
      { command: 'models install', args: ['models', 'install', '--config', config, join(root, 'nope')], stderr: /MODEL_NOT_FOUND: .*no manifest.json/ },
      { command: 'demo', args: ['demo', '--count', '0'], stderr: /expected an integer/ },
      { command: 'train', args: ['train', '--data', join(root, 'nope'), '--out', join(root, 't'), '--name', 'x', '--version', '1'], stderr: /./ },
      { command: 'evaluate', args: ['evaluate', '--data', join(root, 'nope'), '--out', join(root, 'e')], stderr: /./ },
      { command: 'collect', args: ['collect', '--config', join(root, 'none.yaml')], stderr: /./ },
      { command: 'collect gaps', args: ['collect', 'gaps', '--config', join(root, 'none.yaml')], stderr: /./ },
      { command: 'collect backfill', args: ['collect', 'backfill', '--config', join(root, 'none.yaml')], stderr: /./ },
    ];
  });

  it('every leaf command has a refusal case', () => {
    const covered = new Set(cases.map((c) => c.command));
    expect(leaves(buildProgram()).filter((c) => !covered.has(c))).toEqual([]);
  });

  it('each refusal exits 2 with a message and no stack trace', { timeout: 600_000 }, async () => {
    const results: Array<{ command: string; args: string[]; code: number; stderr: string; want: RegExp }> = [];
    const queue = [...cases];
    await Promise.all([0, 1].map(async () => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        const r = await run(c.args);
        results.push({ command: c.command, args: c.args, code: r.code, stderr: r.stderr, want: c.stderr });
      }
    }));
    const wrong = results.filter((r) => r.code !== 2 || !r.want.test(r.stderr) || /\n\s+at /.test(r.stderr) || r.stderr.trim() === '')
      .map((r) => `${r.args.join(' ')} → exit ${r.code}: ${r.stderr.trim().slice(0, 300)}`);
    expect(wrong).toEqual([]);
  });

  it('help and --version exit 0', () => {
    expect(cli(['--version']).code).toBe(0);
    expect(cli(['models', 'install', '--help']).code).toBe(0);
  });
});
