import { spawn } from 'node:child_process';
import type { Logger } from 'pino';

/**
 * sd_notify through the `systemd-notify` command (Node cannot send on a Unix datagram socket).
 * Each message is a fire-and-forget child process, so the daemon never blocks on it; the unit
 * needs `NotifyAccess=all` because the sender is a child. Without NOTIFY_SOCKET (not under
 * systemd) every call is a no-op.
 */
export class SystemdNotifier {
  private readonly socket: string | undefined;
  private readonly command: string;

  constructor(private readonly logger: Logger, env: NodeJS.ProcessEnv = process.env) {
    this.socket = env.NOTIFY_SOCKET;
    this.command = env.XRAY_QC_SYSTEMD_NOTIFY ?? 'systemd-notify';
  }

  get enabled(): boolean {
    return !!this.socket;
  }

  /** Watchdog interval in ms (half of WATCHDOG_USEC), or null when systemd set no watchdog for us. */
  static watchdogIntervalMs(env: NodeJS.ProcessEnv = process.env): number | null {
    const usec = Number(env.WATCHDOG_USEC);
    if (!Number.isFinite(usec) || usec <= 0) return null;
    const pid = env.WATCHDOG_PID ? Number(env.WATCHDOG_PID) : process.pid;
    if (pid !== process.pid) return null;
    return Math.max(100, Math.floor(usec / 2000));
  }

  ready(status: string): void {
    // --pid tells systemd our PID is the main one (the message itself comes from the child).
    this.send(['READY=1', `STATUS=${status}`], [`--pid=${process.pid}`]);
  }

  status(status: string): void {
    this.send([`STATUS=${status}`]);
  }

  watchdog(): void {
    this.send(['WATCHDOG=1']);
  }

  stopping(status: string): void {
    this.send(['STOPPING=1', `STATUS=${status}`]);
  }

  private send(assignments: string[], flags: string[] = []): void {
    if (!this.socket) return;
    const child = spawn(this.command, [...flags, ...assignments], { stdio: 'ignore', env: process.env });
    child.on('error', (err) => this.logger.warn({ err: err.message }, 'systemd-notify failed'));
    child.unref();
  }
}
