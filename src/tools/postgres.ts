import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';

/**
 * Debian's PostgreSQL for tests and benchmarks, started by them: initdb and pg_ctl in a temporary folder, on a
 * free loopback port, trust authentication for loopback only. As root (CI), the server runs as
 * the `postgres` user the package creates (initdb refuses root).
 */

function binDir(): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a)) : [];
  if (!versions.length) throw new Error('PostgreSQL is not installed (Debian package postgresql; .ci/run installs it)');
  return join(base, versions[0], 'bin');
}

export class Postgres {
  readonly dir = mkdtempSync(join(tmpdir(), 'xray-qc-pg-'));
  readonly data = join(this.dir, 'data');
  port = 0;
  private readonly bin = binDir();
  private readonly asRoot = process.getuid?.() === 0;

  private run(tool: string, args: string[]): string {
    const cmd = join(this.bin, tool);
    return this.asRoot
      ? execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
      : execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** A URL for database `db` as the superuser `xray`. */
  url(db = 'plant'): string {
    return `postgres://xray@127.0.0.1:${this.port}/${db}`;
  }

  async start(): Promise<void> {
    if (this.asRoot) {
      chmodSync(this.dir, 0o755);
      chownSync(this.dir, uidOf('postgres'), gidOf('postgres'));
    }
    if (!existsSync(this.data)) this.run('initdb', ['-D', this.data, '-U', 'xray', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
    this.port ||= await freePort();
    this.run('pg_ctl', ['-D', this.data, '-l', join(this.dir, 'log'), '-w', '-t', '60', '-o',
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=50`, 'start']);
    try {
      this.run('createdb', ['-h', '127.0.0.1', '-p', String(this.port), '-U', 'xray', 'plant']);
    } catch (err) {
      if (!/already exists/.test(String((err as { stderr?: string }).stderr))) throw err;
    }
  }

  /** Stops the server; `remove` deletes its folder too. */
  async stop(remove = true): Promise<void> {
    try {
      this.run('pg_ctl', ['-D', this.data, '-m', 'fast', '-w', 'stop']);
    } catch {
      // not running
    }
    if (remove) rmSync(this.dir, { recursive: true, force: true });
  }
}

function uidOf(user: string): number {
  return Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
}

function gidOf(user: string): number {
  return Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
}
