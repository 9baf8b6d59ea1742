import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** What lowering a thread's priority did: its id and niceness now, or why it could not. */
export type ThreadPriority = { tid: number; nice: number } | { error: string };

/**
 * Lowers the calling thread's CPU priority by `increment` niceness steps (capped at 19). On Linux
 * niceness is per thread: `setpriority(PRIO_PROCESS, tid)` with the id `/proc/thread-self` names.
 * The preparation thread runs this way beside inference on the same cores (docs/performance.md,
 * D22); raising niceness needs no privileges. Null when `increment` is 0.
 */
export function lowerThreadPriority(increment: number): ThreadPriority | null {
  if (increment <= 0) return null;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) throw new Error('no thread id in /proc/thread-self');
    setPriority(tid, Math.min(19, getPriority(tid) + increment));
    return { tid, nice: getPriority(tid) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}
