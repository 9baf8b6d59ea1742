import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from '../station.js';

/**
 * A Debian guest with a real systemd as PID 1, booted with systemd-nspawn (no KVM, no host
 * systemd needed): `--volatile=overlay` so every boot starts from the same rootfs and leaves it
 * untouched, `--private-network` (loopback only), the given folders bound in. Commands run inside
 * through `nsenter` into the guest's namespaces. The recipe and its pitfalls are in
 * shared/design/facts.md ("A real systemd as PID 1").
 */

export interface Bind { host: string; guest: string; readOnly?: boolean }

export interface ExecResult { code: number; stdout: string; stderr: string }

/** Why the systemd tests cannot run here, or null when they can. */
export function cannotRun(): string | null {
  if (process.getuid?.() !== 0) return 'not root (systemd-nspawn needs root)';
  for (const tool of ['systemd-nspawn', 'debootstrap', 'unshare', 'nsenter']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed (Debian: systemd-container, debootstrap, util-linux)`;
  }
  return null;
}

/** Builds the rootfs once (test/systemd/rootfs.sh); null, or why it could not be built. */
export function ensureRootfs(script: string, dir: string): string | null {
  const r = spawnSync('bash', [script, dir], { encoding: 'utf8', timeout: 600_000 });
  if (r.status === 0) return null;
  return `the Debian rootfs could not be built (no Debian mirror?): ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join(' / ')}`;
}

/** The service user's uid and gid in the rootfs. */
export function guestUser(rootfs: string, name: string): { uid: number; gid: number } {
  const line = readFileSync(join(rootfs, 'etc/passwd'), 'utf8').split('\n').find((l) => l.startsWith(`${name}:`));
  if (!line) throw new Error(`no user ${name} in ${rootfs}`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

export class Machine {
  private proc: ChildProcess | null = null;
  private cgroups: string[] = [];
  console = '';
  /** The guest's PID 1 as the host sees it. */
  leader = 0;

  constructor(private readonly rootfs: string, private readonly binds: Bind[]) {}

  async boot(timeoutMs = 60_000): Promise<void> {
    // A cgroup of our own, in every hierarchy the host mounts, so that nspawn's payload/ and
    // supervisor/ cgroups are made (and removed) there and not in the host's root.
    const name = `xray-qc-test-${process.pid}-${Date.now()}`;
    const roots = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup/systemd'].filter((d) => existsSync(join(d, 'cgroup.procs')));
    if (roots.length === 0 && existsSync('/sys/fs/cgroup/cgroup.procs')) roots.push('/sys/fs/cgroup');
    this.cgroups = roots.map((r) => join(r, name));
    for (const cg of this.cgroups) mkdirSync(cg);
    const joinCgroups = this.cgroups.map((cg) => `echo $$ > ${cg}/cgroup.procs`).join('; ');
    const nspawn = ['systemd-nspawn', '-q', '-D', this.rootfs, '--register=no', '--keep-unit', '-b', '--console=pipe',
      '--volatile=overlay', '--private-network', '--machine=xray-qc-test',
      ...this.binds.map((b) => `--bind${b.readOnly ? '-ro' : ''}=${b.host}:${b.guest}`)];
    // nspawn wants /run/systemd/nspawn on a tmpfs (the host's /run is not one): a private mount.
    const script = `${joinCgroups}; mkdir -p /run/systemd/nspawn; exec unshare -m sh -c 'mount -t tmpfs tmpfs /run/systemd/nspawn && exec "$@"' sh ${nspawn.map(quote).join(' ')}`;
    this.proc = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '1' } });
    this.proc.stdout!.on('data', (d: Buffer) => { this.console += d.toString(); });
    this.proc.stderr!.on('data', (d: Buffer) => { this.console += d.toString(); });
    const deadline = Date.now() + timeoutMs;
    while (!this.leader) {
      if (this.proc.exitCode !== null) throw new Error(`systemd-nspawn exited ${this.proc.exitCode}: ${this.console}`);
      if (Date.now() > deadline) throw new Error(`the guest did not start: ${this.console}`);
      this.leader = findGuestInit(this.proc.pid!);
      if (!this.leader) await sleep(100);
    }
    // nsenter can find the guest's namespaces before its systemd answers on D-Bus: ask again.
    let state = '';
    for (;;) {
      const r = this.exec(['systemctl', 'is-system-running', '--wait']);
      state = r.stdout.trim();
      if (state === 'running' || state === 'degraded') break;
      if (Date.now() > deadline) throw new Error(`guest system state: ${state || r.stderr.trim()}; console: ${this.console.slice(-2000)}`);
      await sleep(200);
    }
  }

  /** Runs a command inside the guest (all its namespaces, as root). */
  exec(argv: string[], input?: string): ExecResult {
    const r = spawnSync('nsenter', ['-t', String(this.leader), '-a', ...argv], { encoding: 'utf8', input, timeout: 120_000 });
    return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  /** One unit property (`systemctl show -P`, one at a time: several at once come unlabelled). */
  prop(unit: string, name: string): string {
    return this.exec(['systemctl', 'show', '-P', name, unit]).stdout.trim();
  }

  journal(unit: string): string {
    return this.exec(['journalctl', '-u', unit, '--no-pager', '-o', 'short-monotonic']).stdout;
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (p && p.exitCode === null) {
      const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
      // systemd-nspawn turns SIGTERM into an orderly shutdown of the guest
      p.kill('SIGTERM');
      const timer = setTimeout(() => { if (this.leader) spawnSync('kill', ['-9', String(this.leader)]); p.kill('SIGKILL'); }, 20_000);
      await exited;
      clearTimeout(timer);
    }
    for (const cg of this.cgroups.reverse()) {
      for (let i = 0; i < 50 && existsSync(cg); i++) {
        try { rmdirSync(cg); } catch { await sleep(100); }
      }
    }
  }
}

/** The guest's systemd: the `systemd` process below systemd-nspawn, below our `sh`. */
function findGuestInit(shPid: number): number {
  const out = spawnSync('ps', ['-e', '-o', 'pid=,ppid=,comm='], { encoding: 'utf8' }).stdout ?? '';
  const rows = out.trim().split('\n').map((l) => l.trim().split(/\s+/)).map(([pid, ppid, comm]) => ({ pid: Number(pid), ppid: Number(ppid), comm }));
  const below = (pid: number): typeof rows => rows.filter((r) => r.ppid === pid);
  const queue = below(shPid);
  while (queue.length) {
    const r = queue.shift()!;
    if (r.comm === 'systemd' && rows.find((x) => x.pid === r.ppid)?.comm === 'systemd-nspawn') return r.pid;
    queue.push(...below(r.pid));
  }
  return 0;
}

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Lines of the kernel log (audit type=1326: a seccomp action) from after `since` lines. */
export function seccompEvents(since: number): string[] {
  return kernelLog().slice(since).filter((l) => l.includes('type=1326'));
}

export function kernelLog(): string[] {
  try {
    return execFileSync('dmesg', { encoding: 'utf8' }).split('\n');
  } catch {
    return [];
  }
}
