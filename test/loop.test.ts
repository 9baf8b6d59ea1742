import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { EventBus } from '../src/events.js';
import { failedScore, type PreparedCapture, type QueuedCapture, type Scored, type StationEvents } from '../src/pipeline/messages.js';
import { CaptureLoop } from '../src/pipeline/loop.js';
import type { LoopStages } from '../src/pipeline/stages.js';

/**
 * The capture loop in-process, with stages that only record what was asked of them: the loop is
 * scheduling, so what it is tested for is order, overlap, admission and stopping.
 */

interface FakeModel { name: string }

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

class Rig {
  readonly queue: QueuedCapture[] = [];
  readonly trace: string[] = [];
  readonly recorded: Array<{ file: string; model: string; scored: Scored }> = [];
  readonly released: string[] = [];
  readonly audited = new Set<string>();
  readonly logs: Array<{ msg: string; stack?: string; file?: string }> = [];
  readonly faults: Array<string | null> = [];
  /** Per file: how each preparation turns out (default: ok). */
  readonly outcome = new Map<string, Array<PreparedCapture['ok'] | 'internal' | 'truncated'>>();
  /** Inferences held until the test lets them go (file → resolve). */
  readonly inferring = new Map<string, (s: Scored) => void>();
  holdInference = false;
  failRecord = 0;
  readonly events = new EventBus<StationEvents>(() => undefined);
  readonly loop: CaptureLoop<FakeModel>;

  constructor(initial: FakeModel | null = { name: 'A' }, graceMs = 50) {
    const logger = pino({ level: 'info' }, new Writable({
      write: (chunk: Buffer, _enc, done) => {
        this.logs.push(JSON.parse(chunk.toString()) as { msg: string });
        done();
      },
    }));
    this.events.on('fault.changed', (f) => this.faults.push(f.message));
    const stages: LoopStages<FakeModel> = {
      queued: (n) => this.queue.slice(0, n),
      audited: (file, sha) => this.audited.has(`${file}@${sha}`),
      dequeue: (file) => this.drop(file),
      prepare: async (c, model) => {
        this.trace.push(`prepare ${c.file} for ${model.name}`);
        await new Promise((r) => setTimeout(r, 2));
        const how = this.outcome.get(c.file)?.shift() ?? true;
        const base = { file: c.file, stat: { size: c.bytes, mtimeMs: c.mtimeMs }, sha256: `sha-${c.file}` };
        if (how === 'internal') {
          const err = new TypeError('boom');
          return { ...base, ok: false, error: { code: 'INTERNAL_ERROR', message: err.message, stack: err.stack } };
        }
        if (how === 'truncated') return { ...base, ok: false, error: { code: 'TIFF_TRUNCATED', message: 'cut short' } };
        this.trace.push(`prepared ${c.file}`);
        return { ...base, ok: true, width: 4, height: 4, tensor: new Float32Array(1), localBounds: null, decodeMs: 1, preprocessMs: 1, stats: { clipLow: null, clipHigh: null, p0_01: 0, p50: 0, p99_99: 0 } };
      },
      release: (p) => this.released.push(p.file),
      score: (p, model) => {
        this.trace.push(`score ${p.file} on ${model.name}`);
        const result: Scored = { file: p.file, verdict: 'pass', reason: 'normal', p_abnormal: 0.1, threshold: 0.5, model: { name: model.name, version: 1, sha256: 'x' }, width: 4, height: 4, timings_ms: { decode: 1, preprocess: 1, infer: 1, total: 3 } };
        if (!this.holdInference) return Promise.resolve(result);
        return new Promise((resolve) => this.inferring.set(p.file, () => resolve(result)));
      },
      record: (c, model, _p, scored) => {
        if (this.failRecord > 0) {
          this.failRecord--;
          throw new Error('disk I/O error');
        }
        this.trace.push(`record ${c.file}`);
        this.recorded.push({ file: c.file, model: model.name, scored });
        this.drop(c.file);
      },
    };
    this.loop = new CaptureLoop(stages, { logger, events: this.events, incompleteGraceMs: graceMs }, initial);
  }

  add(...files: string[]): void {
    for (const file of files) this.queue.push({ file, bytes: 10, mtimeMs: this.queue.length });
    this.loop.wake();
  }

  private drop(file: string): void {
    const at = this.queue.findIndex((c) => c.file === file);
    if (at >= 0) this.queue.splice(at, 1);
  }
}

describe('the capture loop (in-process)', () => {
  it('scores oldest first, preparing the next capture while one is in inference', async () => {
    const r = new Rig();
    r.holdInference = true;
    await r.loop.start();
    r.add('a', 'b', 'c');
    // b's preparation finished while a is still in inference (the loop hands it over only if so)
    await until(() => r.inferring.has('a') && r.trace.includes('prepared b'));
    expect(r.recorded).toEqual([]);
    r.inferring.get('a')!(undefined as never);
    await until(() => r.recorded.length === 1);
    await until(() => r.inferring.has('b'));
    r.inferring.get('b')!(undefined as never);
    await until(() => r.inferring.has('c'));
    r.inferring.get('c')!(undefined as never);
    await until(() => r.recorded.length === 3);
    expect(r.recorded.map((x) => x.file)).toEqual(['a', 'b', 'c']);
    // the next one goes into inference before the previous is recorded (no fsync gap)
    expect(r.trace.indexOf('score b on A')).toBeLessThan(r.trace.indexOf('record a'));
    await r.loop.stop();
  });

  it('an INTERNAL_ERROR in preparation is logged with its stack, tried once more, then recorded with that code', async () => {
    const r = new Rig();
    r.outcome.set('x', ['internal', 'internal']);
    r.outcome.set('y', ['internal', true]);
    await r.loop.start();
    r.add('x', 'y');
    await until(() => r.recorded.length === 2);
    const x = r.recorded.find((e) => e.file === 'x')!.scored;
    expect(x).toEqual(failedScore('x', { code: 'INTERNAL_ERROR', message: 'boom' }));
    expect(r.recorded.find((e) => e.file === 'y')!.scored.verdict).toBe('pass'); // the retry succeeded
    expect(r.trace.filter((t) => t === 'prepare x for A')).toHaveLength(2);
    const internal = r.logs.filter((l) => /internal error/.test(l.msg));
    expect(internal.filter((l) => l.file === 'x').map((l) => l.msg)).toEqual([
      'internal error preparing the capture: trying it once more',
      'internal error preparing the capture again: recording it',
    ]);
    expect(internal.filter((l) => l.file === 'y').map((l) => l.msg)).toEqual(['internal error preparing the capture: trying it once more']);
    for (const l of internal) expect(l.stack).toMatch(/TypeError: boom\n\s+at /);
    await r.loop.stop();
  });

  it('already audited content leaves the queue without a row; a truncated-looking capture waits out its grace once', async () => {
    const r = new Rig();
    r.audited.add('dup@sha-dup');
    r.outcome.set('t', ['truncated', 'truncated']);
    await r.loop.start();
    r.add('dup', 't');
    await until(() => r.recorded.length === 1);
    expect(r.queue).toEqual([]);
    expect(r.recorded[0].file).toBe('t');
    expect(r.recorded[0].scored.reason).toBe('TIFF_TRUNCATED');
    expect(r.trace.filter((t) => t === 'prepare t for A')).toHaveLength(2);
    expect(r.released).toEqual(['dup', 't']);
    await r.loop.stop();
  });

  it('a database that refuses the row is a fault; the capture stays queued and is recorded once it accepts', async () => {
    const r = new Rig();
    r.failRecord = 1;
    await r.loop.start();
    r.add('a');
    await until(() => r.recorded.length === 1, 5000);
    expect(r.faults).toEqual(['database: disk I/O error', null]);
    expect(r.trace.filter((t) => t === 'prepare a for A')).toHaveLength(2);
    await r.loop.stop();
  });

  it('a model swap waits until nothing is in flight: what was prepared for the old model is scored on it, the rest on the new', async () => {
    const r = new Rig();
    r.holdInference = true;
    await r.loop.start();
    r.add('a', 'b', 'c');
    await until(() => r.inferring.has('a') && r.trace.includes('prepare b for A'));
    const swapped = r.loop.swap({ name: 'B' });
    r.holdInference = false;
    r.inferring.get('a')!(undefined as never);
    await until(() => r.inferring.has('b') || r.recorded.length >= 2);
    r.inferring.get('b')?.(undefined as never);
    const old = await swapped;
    expect(old?.name).toBe('A');
    await until(() => r.recorded.length === 3);
    expect(r.recorded.map((x) => [x.file, x.model])).toEqual([['a', 'A'], ['b', 'A'], ['c', 'B']]);
    expect(r.trace).toContain('prepare c for B');
    expect(r.loop.serving?.name).toBe('B');
    await r.loop.stop();
  });

  it('no model yet: captures stay queued until one is swapped in', async () => {
    const r = new Rig(null);
    await r.loop.start();
    r.add('a');
    await new Promise((res) => setTimeout(res, 50));
    expect(r.trace).toEqual([]);
    await r.loop.swap({ name: 'first' });
    await until(() => r.recorded.length === 1);
    expect(r.recorded[0].model).toBe('first');
    await r.loop.stop();
  });

  it('stop: the capture in inference is recorded; the one prepared behind it stays queued and is released', async () => {
    const r = new Rig();
    r.holdInference = true;
    await r.loop.start();
    r.add('a', 'b');
    await until(() => r.inferring.has('a') && r.trace.includes('prepare b for A'));
    const stopped = r.loop.stop();
    r.inferring.get('a')!(undefined as never);
    await stopped;
    expect(r.recorded.map((x) => x.file)).toEqual(['a']);
    expect(r.queue.map((c) => c.file)).toEqual(['b']);
    await until(() => r.released.includes('b'));
  });
});

describe('the event bus', () => {
  it('a listener that throws is reported and does not keep the others from running', () => {
    const errors: string[] = [];
    const bus = new EventBus<StationEvents>((event, err) => errors.push(`${event}: ${err.message}`));
    const seen: string[] = [];
    bus.on('capture.queued', () => {
      throw new Error('listener bug');
    });
    const off = bus.on('capture.queued', (e) => seen.push(e.file));
    bus.emit('capture.queued', { file: 'a' });
    off();
    bus.emit('capture.queued', { file: 'b' });
    expect(seen).toEqual(['a']);
    expect(errors).toEqual(['capture.queued: listener bug', 'capture.queued: listener bug']);
  });
});
