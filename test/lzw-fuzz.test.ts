import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { WasmLzw } from '../src/decode/lzw-wasm.js';
import { cases, geometry, libtiffOutcome, oursOutcome, pastFullTable, runJs, runWasm, scratchDir, tiffWithStrip, type Case } from './tools/lzw-fuzz.js';

/**
 * The two LZW decoders (JavaScript and the WebAssembly kernel) fuzzed against each other and
 * against libtiff, seeded, with fast-check's shrinking on a failure. `npm test` runs a short
 * run; `XRAY_QC_FUZZ_RUNS=100000 npm run test:fuzz` the long one (docs/reliability.md).
 */

const SEED = Number(process.env.XRAY_QC_FUZZ_SEED ?? 20261201);
const RUNS = Number(process.env.XRAY_QC_FUZZ_RUNS ?? 3000);
/** Every how many-th case also goes through libtiff (a tiffcp process each: ~2 ms). */
const LIBTIFF_EVERY = Number(process.env.XRAY_QC_FUZZ_LIBTIFF_EVERY ?? 10);

describe('LZW decoders fuzzed', () => {
  const kernel = new WasmLzw();
  const dir = scratchDir();
  afterAll(async () => (await import('node:fs')).rmSync(dir, { recursive: true, force: true }));

  it(`JavaScript and WebAssembly: the same bytes or the same kind of error, nothing written outside the guards (${RUNS} cases, seed ${SEED})`, () => {
    const tally = { ok: 0, error: 0, full: 0, short: 0 };
    const errors: Record<string, number> = {};
    const t0 = performance.now();
    fc.assert(fc.property(cases, (c: Case) => {
      const js = runJs(c);
      const w = runWasm(kernel, c);
      if (js.ok) tally.ok++; else tally.error++;
      if (!js.ok) errors[js.error] = (errors[js.error] ?? 0) + 1;
      if (js.ok && js.bytes.length / 2 === c.cap) tally.full++; else if (js.ok) tally.short++;
      return js.guard && w.guard && JSON.stringify({ ...js, guard: 0 }) === JSON.stringify({ ...w, guard: 0 });
    }), { seed: SEED, numRuns: RUNS });
    console.log(`LZWFUZZ ${JSON.stringify({ decoders: 'js-vs-wasm', seed: SEED, cases: RUNS, seconds: +((performance.now() - t0) / 1000).toFixed(1), ...tally, errors })}`);
    expect(tally.ok).toBeGreaterThan(RUNS / 10); // both outcomes really happen, and every kind of error
    expect(Object.keys(errors).sort()).toEqual(['after the table is full', 'before any string', 'beyond the table']);
    expect(tally.error).toBeGreaterThan(RUNS / 100);
    expect(tally.full).toBeGreaterThan(RUNS / 20);
  });

  it(`our decode of a one-strip file equals libtiff's (tiffcp): the same pixels, or both refuse, but for streams that go on past a full table (every ${LIBTIFF_EVERY}th case)`, async () => {
    const n = Math.ceil(RUNS / LIBTIFF_EVERY);
    const tally = { both_ok: 0, both_refuse: 0, past_full_table_libtiff_decodes: 0 };
    const t0 = performance.now();
    await fc.assert(fc.asyncProperty(cases, async (c: Case) => {
      const { width, height } = geometry(c.cap);
      const tif = tiffWithStrip(width, height, c.stream);
      const [ours, theirs] = await Promise.all([oursOutcome(tif), libtiffOutcome(tif, dir)]);
      if (pastFullTable(ours) && theirs.ok) {
        tally.past_full_table_libtiff_decodes++; // the one difference we keep (see pastFullTable)
        return true;
      }
      if (ours.ok !== theirs.ok) return false;
      if (ours.ok && theirs.ok) {
        tally.both_ok++;
        return ours.bytes === theirs.bytes;
      }
      tally.both_refuse++;
      return true;
    }), { seed: SEED + 1, numRuns: n });
    console.log(`LZWFUZZ ${JSON.stringify({ decoders: 'ours-vs-libtiff', seed: SEED + 1, cases: n, seconds: +((performance.now() - t0) / 1000).toFixed(1), ...tally })}`);
    expect(tally.both_ok).toBeGreaterThan(n / 20);
    expect(tally.both_refuse).toBeGreaterThan(n / 20);
  });
});
