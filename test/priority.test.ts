import { readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { describe, expect, it } from 'vitest';
import { PrepareThread } from '../src/prepare/thread.js';

/** A thread's niceness as the kernel reports it (field 19 of /proc/<pid>/task/<tid>/stat). */
function niceOf(tid: number): number {
  const stat = readFileSync(`/proc/${process.pid}/task/${tid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

describe('the preparation thread yields the CPU to inference', () => {
  it('runs its worker thread at the configured niceness below the process, and only that thread', async () => {
    const base = getPriority(0);
    const preparer = new PrepareThread({ niceIncrement: 7 });
    try {
      await preparer.start();
      const thread = preparer.thread;
      expect(thread && 'tid' in thread).toBe(true);
      const { tid, nice } = thread as { tid: number; nice: number };
      expect(tid).not.toBe(process.pid);
      expect(nice).toBe(Math.min(19, base + 7));
      expect(niceOf(tid)).toBe(nice); // what the kernel says, not only what the worker reported
      expect(niceOf(process.pid)).toBe(base); // the main thread (event loop) is untouched
    } finally {
      await preparer.stop();
    }
  });

  it('leaves the priority alone at 0', async () => {
    const preparer = new PrepareThread({ niceIncrement: 0 });
    try {
      await preparer.start();
      expect(preparer.thread).toBeNull();
    } finally {
      await preparer.stop();
    }
  });
});
