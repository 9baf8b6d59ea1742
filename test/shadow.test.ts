import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PACK_DEFAULTS, packBundle } from '../src/model/pack.js';
import { synthElectrode } from '../src/tools/synth.js';
import { encodeTiff16 } from '../src/tools/tiff-writer.js';
import { cli } from './helpers.js';
import { brokerSubscriberStation, DaemonProcess, sleep, sqlRows, until } from './station.js';

/**
 * A shadow candidate on a running station: v2 (the same graph, threshold 0.99: it passes what
 * v1 flags) scores captures only while the line is idle; the active verdicts and their order are
 * what they would be without it; `models compare` equals SQL over shadow_scores; `models
 * activate` refuses v2 after 30+ labelled captures on which it did worse, and `--force` overrides.
 */

const capture = (seed: number): Buffer => {
  const img = synthElectrode(seed, null, { width: 240, height: 440 });
  return encodeTiff16(img.width, img.height, img.data, { compression: 'deflate' });
};

const query = <T>(db: string, sql: string): T[] => sqlRows<T>(db, sql);

describe('a shadow candidate', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('scores while the line is idle, changes no active verdict, is compared as SQL says, and a worse one is not activated', async () => {
    const { sub, station } = await brokerSubscriberStation(cleanups, { settleMs: 150 });
    const v1 = JSON.parse(readFileSync(join(station.models, 'tiny-v1', 'manifest.json'), 'utf8')) as { name: string; input: { height: number; width: number }; preprocess: { bounds: { min: number; max: number } } };
    await packBundle({
      ...PACK_DEFAULTS, onnx: join(station.models, 'tiny-v1', 'model.onnx'), out: join(station.models, 'tiny-v2'), name: v1.name, version: 2,
      bounds: v1.preprocess.bounds, threshold: 0.99, reviewBand: null, height: v1.input.height, width: v1.input.width, untrained: true,
    });
    writeFileSync(join(station.models, 'active'), 'tiny-v1\n');
    const daemon = new DaemonProcess(station.config);
    cleanups.push(() => daemon.stop('SIGKILL'));
    daemon.start();
    await daemon.waitFor(/watching the capture folder/);
    const shadow = cli(['models', 'shadow', '2', '--config', station.config]);
    expect(shadow.code, shadow.stderr).toBe(0);
    await daemon.waitFor(/shadow candidate loaded/, 20_000);
    const list = cli(['models', 'list', '--json', '--config', station.config]).stdout.trim().split('\n').map((l) => JSON.parse(l) as { folder: string; active: boolean; shadow: boolean });
    expect(list.map((e) => [e.folder, e.active, e.shadow])).toEqual([['tiny-v1', true, false], ['tiny-v2', false, true]]);

    // a burst (the line busy), then captures in small groups with pauses (the line idle)
    let n = 0;
    const drop = (count: number): void => {
      for (let i = 0; i < count; i++, n++) writeFileSync(join(station.captures, `c${String(n).padStart(3, '0')}.tif`), capture(700 + n));
    };
    drop(12);
    for (let g = 0; g < 8; g++) {
      await sleep(900);
      drop(4);
    }
    await until(() => query(station.db, 'SELECT 1 FROM inspections').length === n, 30_000, 'every capture recorded');
    await until(() => query(station.db, 'SELECT 1 FROM shadow_scores').length >= 32, 30_000, 'the candidate scored 32 captures');
    // the line idle from here: the candidate catches up on every capture, and only then do its figures stand still for the comparison
    await until(() => query(station.db, 'SELECT 1 FROM shadow_scores').length === n, 60_000, 'the candidate scored every capture once the line paused');
    await until(() => sub.verdicts.length >= n, 15_000, 'every verdict published');

    // the active path: every capture once, in arrival order, all by v1, none by the candidate
    const rows = query<{ seq: number; file_path: string; model_version: number; verdict: string }>(station.db, 'SELECT seq, file_path, model_version, verdict FROM inspections ORDER BY seq');
    expect(rows.map((r) => r.file_path)).toEqual([...rows.map((r) => r.file_path)].sort());
    expect(new Set(rows.map((r) => r.model_version))).toEqual(new Set([1]));
    expect(new Set(rows.map((r) => r.verdict))).toEqual(new Set(['flag']));
    expect(new Set(sub.verdicts.map((v) => v.seq)).size).toBe(n);

    // models compare equals SQL over shadow_scores
    const out = cli(['models', 'compare', '--config', station.config]);
    expect(out.code, out.stderr).toBe(0);
    const c = JSON.parse(out.stdout) as { candidate: { version: number }; coverage: { shadowed: number; recorded: number }; verdict_agreement: number; flips: unknown[]; delta_p_abnormal: { max: number } };
    const sql = query<{ shadowed: number; agree: number; maxd: number }>(station.db, `SELECT count(*) AS shadowed, sum(s.verdict = i.verdict) AS agree, max(abs(s.p_abnormal - i.p_abnormal)) AS maxd
      FROM shadow_scores s JOIN inspections i ON i.id = s.inspection_id`)[0];
    expect(c.candidate.version).toBe(2);
    expect(c.coverage).toEqual({ shadowed: sql.shadowed, recorded: n, share: sql.shadowed / n });
    expect(c.coverage.shadowed).toBeGreaterThan(0);
    expect(c.verdict_agreement).toBe(sql.agree / sql.shadowed);
    expect(c.flips).toHaveLength(sql.shadowed - sql.agree);
    expect(c.delta_p_abnormal.max).toBeCloseTo(sql.maxd, 12);

    // 30+ labelled captures, all abnormal: v1 (flags all) is right, v2 (passes all) wrong
    const shadowed = query<{ inspection_id: string }>(station.db, 'SELECT DISTINCT inspection_id FROM shadow_scores');
    const csv = join(station.root, 'labels.csv');
    writeFileSync(csv, `id,label\n${shadowed.map((s) => `${s.inspection_id},abnormal`).join('\n')}\n`);
    expect(cli(['label', 'import', csv, '--db', station.db]).code).toBe(0);
    const refused = cli(['models', 'activate', '2', '--config', station.config]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(new RegExp(`balanced accuracy 0\\.0 % against 100\\.0 % on ${shadowed.length} labelled captures`));
    expect(readFileSync(join(station.models, 'active'), 'utf8').trim()).toBe('tiny-v1');
    const forced = cli(['models', 'activate', '2', '--force', '--config', station.config]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(readFileSync(join(station.models, 'active'), 'utf8').trim()).toBe('tiny-v2');
  }, 180_000);
});
