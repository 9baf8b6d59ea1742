import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { TensorContract } from '../src/model/contract.js';
import { prepareCapture } from '../src/prepare/capture.js';
import { Preprocessor } from '../src/prepare/preprocessor.js';
import { PrepareThread } from '../src/prepare/thread.js';
import { synthElectrode } from '../src/tools/synth.js';
import { encodeTiff16 } from '../src/tools/tiff-writer.js';
import { tempDir } from './helpers.js';

/**
 * D26: a preparation that finishes while inference runs waits in shared memory instead of
 * waking the main thread with a message; `hold(false)` (inference ended) collects it.
 */
const contract: TensorContract = { height: 40, width: 24, conversion: 'global', bounds: { min: 1000, max: 60000 }, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
const shared = (): Float32Array => new Float32Array(new SharedArrayBuffer(3 * contract.height * contract.width * 4));

const dir = tempDir('xray-qc-preparer-');
/** A capture of `width`×50 (the width tells results apart), LZW. */
function capture(width: number): string {
  const img = synthElectrode(width, 'scratch', { width, height: 50 });
  const file = join(dir, `c${width}.tif`);
  writeFileSync(file, encodeTiff16(img.width, img.height, img.data, { compression: 'lzw' }));
  return file;
}

async function until(what: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Marks when a promise settles, so a test can see that it has not. */
function watch<T>(p: Promise<T>): { p: Promise<T>; settled: () => boolean } {
  let done = false;
  const q = p.finally(() => {
    done = true;
  });
  return { p: q, settled: () => done };
}

let preparer: PrepareThread | null = null;
afterEach(async () => {
  await preparer?.stop();
  preparer = null;
});

describe('preparation results during inference (D26)', () => {
  it('held: the result waits in shared memory, unannounced, until hold(false) collects it; the same result as in-thread', async () => {
    preparer = new PrepareThread();
    await preparer.start();
    const file = capture(61);
    preparer.hold(true);
    const tensor = shared();
    const r = watch(preparer.prepare(file, contract, {}, tensor));
    await until(() => preparer!.held === 1);
    await new Promise((res) => setTimeout(res, 300)); // time for a message, had one been sent
    expect(r.settled()).toBe(false);
    expect(preparer.held).toBe(1);
    preparer.hold(false);
    const got = await r.p;
    expect(preparer.held).toBe(0);
    const direct = await prepareCapture(file, new Preprocessor(contract), {}, shared());
    if (!got.ok || !direct.ok) throw new Error('expected both to succeed');
    expect(got.tensor).toBe(tensor); // written in place
    expect(Array.from(got.tensor)).toEqual(Array.from(direct.tensor));
    expect({ ...got, tensor: null, decodeMs: 0, preprocessMs: 0 }).toEqual({ ...direct, tensor: null, decodeMs: 0, preprocessMs: 0 });
  });

  it('not held: the result announces itself; a failure crosses the mailbox with its code and message', async () => {
    preparer = new PrepareThread();
    await preparer.start();
    const ok = await preparer.prepare(capture(33), contract, {}, shared());
    expect(ok.ok && ok.width).toBe(33);
    const bad = join(dir, 'bad.tif');
    writeFileSync(bad, Buffer.from('II*\0not a tiff at all'));
    preparer.hold(true);
    const r = watch(preparer.prepare(bad, contract, {}, shared()));
    await until(() => preparer!.held === 1);
    expect(r.settled()).toBe(false);
    preparer.hold(false);
    const failed = await r.p;
    expect(failed.ok).toBe(false);
    if (failed.ok) return;
    expect(failed.file).toBe(bad);
    expect(failed.error.code).toMatch(/^TIFF_/);
    expect(failed.error.message.length).toBeGreaterThan(5);
    expect(failed.error.stack).toBeUndefined(); // a capture's fault, not ours: no stack
  });

  it('an unexpected exception in the worker is INTERNAL_ERROR with its stack, never a TIFF_ code; the next capture is prepared', async () => {
    preparer = new PrepareThread({ inject: { throwOnNameContaining: 'boom' } });
    await preparer.start();
    const img = synthElectrode(5, null, { width: 30, height: 50 });
    const file = join(dir, 'boom-1.tif');
    writeFileSync(file, encodeTiff16(img.width, img.height, img.data));
    const r = await preparer.prepare(file, contract, {}, shared());
    if (r.ok) throw new Error('expected the injected fault');
    expect(r.error.code).toBe('INTERNAL_ERROR');
    expect(r.error.message).toMatch(/injected fault/);
    expect(r.error.stack).toMatch(/at prepareCapture .*capture\.(js|ts)/);
    expect(r.sha256).toMatch(/^[0-9a-f]{64}$/); // read and hashed before the fault
    const next = await preparer.prepare(capture(37), contract, {}, shared());
    expect(next.ok && next.width).toBe(37);
  });

  it('collect() while still held (overlapping inferences) takes finished results and leaves the others unannounced', async () => {
    preparer = new PrepareThread();
    await preparer.start();
    const big = join(dir, 'big.tif');
    const img = synthElectrode(7, 'bubble', { width: 3000, height: 3000 });
    writeFileSync(big, encodeTiff16(img.width, img.height, img.data, { compression: 'deflate' }));
    preparer.hold(true);
    const a = watch(preparer.prepare(capture(40), contract, {}, shared()));
    const b = watch(preparer.prepare(big, contract, {}, shared())); // the worker takes it after a: ~100 ms more
    await until(() => preparer!.held === 1);
    preparer.collect();
    expect((await a.p).ok).toBe(true);
    expect(b.settled()).toBe(false);
    await until(() => preparer!.held === 1); // b done, and still waiting: it was not told to wake
    await new Promise((res) => setTimeout(res, 300));
    expect(b.settled()).toBe(false);
    preparer.hold(false);
    const rb = await b.p;
    expect(rb.ok && rb.width).toBe(3000);
  });

  it('more requests than slots, and results too big for a slot, come as messages even while held', async () => {
    preparer = new PrepareThread({ mailbox: { slots: 2, slotBytes: 4096 } });
    await preparer.start();
    preparer.hold(true);
    const widths = [30, 31, 32, 34, 35];
    const all = widths.map((w) => watch(preparer!.prepare(capture(w), contract, {}, shared())));
    // Two have slots and wait; three had none and arrive by themselves.
    await until(() => all.filter((r) => r.settled()).length === 3 && preparer!.held === 2);
    expect(all.map((r) => r.settled())).toEqual([false, false, true, true, true]);
    preparer.hold(false);
    const results = await Promise.all(all.map((r) => r.p));
    expect(results.map((x) => x.ok && x.width)).toEqual(widths);
    await preparer.stop();

    preparer = new PrepareThread({ mailbox: { slots: 2, slotBytes: 64 } }); // no result fits in 64 bytes
    await preparer.start();
    preparer.hold(true);
    const big = await preparer.prepare(capture(36), contract, {}, shared());
    expect(big.ok && big.width).toBe(36);
  });
});
