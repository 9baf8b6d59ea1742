import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

/** JSON lines to stdout (journald); readable colour when stdout is a terminal. */
export function createLogger(level = process.env.XRAY_QC_LOG_LEVEL ?? 'info'): Logger {
  const base = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (process.stdout.isTTY) return pino(base, pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
  return pino(base, pino.destination({ dest: 1, sync: true }));
}
