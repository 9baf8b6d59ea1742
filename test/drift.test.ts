import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { synthElectrode } from '../src/tools/synth.js';
import { encodeTiff16 } from '../src/tools/tiff-writer.js';
import { cli } from './helpers.js';
import { brokerSubscriberStation, DaemonProcess, sleep, sqlRows, until } from './station.js';

/**
 * A drift episode on a running station: captures whose intensities move past the model's global
 * bounds (the tiny model's 1700–2800) raise one warning on the status topic and one `events`
 * row; captures back to normal clear it with one more row.
 */

function capture(seed: number, shift: number): Buffer {
  const img = synthElectrode(seed, null, { width: 240, height: 440 });
  const data = img.data.map((v) => Math.min(65535, v + shift));
  return encodeTiff16(img.width, img.height, data, { compression: 'deflate' });
}

const rows = (db: string, sql: string): Array<Record<string, unknown>> => sqlRows(db, sql);

describe('drift', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('shifted captures raise one warning and one events row; normal ones clear it', async () => {
    const { sub, station } = await brokerSubscriberStation(cleanups, { settleMs: 150, extra: 'drift:\n  window: 4\n  max_clipped: 0.3\n' });
    const daemon = new DaemonProcess(station.config);
    cleanups.push(() => daemon.stop('SIGKILL'));
    daemon.start();
    await daemon.waitFor(/watching the capture folder/);
    let n = 0;
    const phase = async (count: number, shift: number): Promise<void> => {
      for (let i = 0; i < count; i++) {
        writeFileSync(join(station.captures, `c${String(n).padStart(3, '0')}.tif`), capture(500 + n, shift));
        n++;
        const want = n;
        await until(() => rows(station.db, 'SELECT 1 FROM inspections').length === want, 20_000, `capture ${want} recorded`);
      }
    };
    await phase(5, 0);
    expect(rows(station.db, "SELECT 1 FROM events WHERE kind = 'drift'")).toHaveLength(0);
    await phase(6, 2500); // every pixel above Gmax = 2800
    await until(() => sub.status.some((s) => ((s as { warnings?: string[] }).warnings ?? []).length > 0), 10_000, 'a warning on the status topic');
    await phase(6, 0);
    await until(() => rows(station.db, "SELECT 1 FROM events WHERE kind = 'drift'").length === 2, 10_000, 'the episode ended');
    await sleep(300);
    const drift = rows(station.db, "SELECT message, data FROM events WHERE kind = 'drift' ORDER BY id");
    expect(drift.map((r) => String(r.message))).toEqual([expect.stringMatching(/^drift: .* over the last 4 captures \(limit 30\.00 %\)/), expect.stringMatching(/^drift ended: /)]);
    const warnings = sub.status.map((s) => (s as { warnings?: string[] }).warnings ?? []);
    expect(warnings.some((w) => w.length === 1 && /^drift: /.test(w[0]))).toBe(true);
    expect(warnings.at(-1)).toEqual([]);
    // the figures per capture, as `audit drift` reports them
    const clipped = rows(station.db, 'SELECT clip_high FROM inspections ORDER BY seq').map((r) => Number(r.clip_high));
    expect(clipped.slice(5, 11).every((c) => c > 0.99)).toBe(true);
    expect(clipped.slice(0, 5).every((c) => c < 0.3)).toBe(true); // the synthetic border: ~8 % above Gmax
    const report = cli(['audit', 'drift', '--by', 'day', '--format', 'json', '--db', station.db]);
    expect(report.code, report.stderr).toBe(0);
    const day = JSON.parse(report.stdout.trim().split('\n')[0]) as { n: number; mean_clip_high: number; bounds: string };
    expect(day.n).toBe(17);
    expect(day.bounds).toBe('1700.0–2800.0');
    expect(day.mean_clip_high).toBeCloseTo(clipped.reduce((a, b) => a + b, 0) / clipped.length, 9);
    // the scores against a bundle's training predictions: the population stability index
    writeFileSync(join(station.models, 'tiny-v1', 'train-predictions.csv'), `file,p_abnormal\n${Array.from({ length: 40 }, (_, i) => `t${i}.tif,${(i + 0.5) / 40}`).join('\n')}\n`);
    const withPsi = cli(['audit', 'drift', '--by', 'day', '--format', 'json', '--db', station.db, '--bundle', join(station.models, 'tiny-v1')]);
    expect(withPsi.code, withPsi.stderr).toBe(0);
    const scored = JSON.parse(withPsi.stdout.trim().split('\n')[0]) as { psi: number; psi_rule: string };
    const ps = sqlRows<{ p: number }>(station.db, 'SELECT p_abnormal AS p FROM inspections WHERE p_abnormal IS NOT NULL').map((r) => r.p);
    const share = (lo: number): number => ps.filter((p) => Math.min(9, Math.floor(p * 10)) === lo).length / ps.length;
    let want = 0;
    for (let b = 0; b < 10; b++) {
      const e = 0.1; // the reference fills the ten bins evenly
      const a = Math.max(share(b), 1e-4);
      want += (a - e) * Math.log(a / e);
    }
    expect(scored.psi).toBeCloseTo(want, 9);
    expect(scored.psi_rule).toBe('significant shift'); // the untrained tiny model scores everything alike
  }, 180_000);
});
