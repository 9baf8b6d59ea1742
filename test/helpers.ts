import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeNpy } from '../src/tools/npy.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
/** Debian's python3, where python3-numpy/-opencv/-tifffile are installed (not a pyenv shim). */
export const PYTHON = process.env.XRAY_QC_PYTHON ?? '/usr/bin/python3';

export function tempDir(prefix = 'xray-qc-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function python(script: string, args: string[] = [], input?: string): string {
  return execFileSync(PYTHON, [script, ...args], { encoding: 'utf8', input, maxBuffer: 1 << 28 });
}

export function pythonInline(code: string, args: string[] = []): string {
  return execFileSync(PYTHON, ['-c', code, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
}

export interface KitEntry { file: string; source: string; invert: boolean; tool: string; desc: string }

export function makeKit(dir: string, opts: { width?: number; height?: number; seed?: number } = {}): KitEntry[] {
  const args = [dir];
  if (opts.width) args.push('--width', String(opts.width));
  if (opts.height) args.push('--height', String(opts.height));
  if (opts.seed) args.push('--seed', String(opts.seed));
  python(join(ROOT, 'test/tools/make_kit.py'), args);
  return JSON.parse(readFileSync(join(dir, 'kit.json'), 'utf8')) as KitEntry[];
}

export function readNpy(path: string): { data: Float32Array | Uint16Array | Uint8Array; shape: number[] } {
  return decodeNpy(readFileSync(path));
}

export const CLI = join(ROOT, 'bin/xray-qc.js');

export interface CliResult { code: number; stdout: string; stderr: string }

/** Runs the built CLI (`npm test` builds dist/ first) as a user would. */
export function cli(args: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8', timeout: options.timeoutMs ?? 300_000, maxBuffer: 1 << 28, env: { ...process.env, ...options.env },
  });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function jsonLines<T = Record<string, unknown>>(text: string): T[] {
  return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as T);
}
