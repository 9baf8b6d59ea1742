import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Sqlite from '../src/record/sqlite.js';
import { synthElectrode } from '../src/tools/synth.js';
import { encodeTiff16 } from '../src/tools/tiff-writer.js';
import { cli, pythonInline } from './helpers.js';
import { DaemonProcess, freePort, makeStation, Mosquitto, Subscriber, until, type StationDirs } from './station.js';

/**
 * The quality loop on a running station: captures in bundle folders (and one with its bundle in
 * the TIFF's ImageDescription) get their bundle and part in the audit row and the MQTT verdict;
 * labels from `label set` and `label import` (twice); `audit accuracy --by bundle` equal to the
 * same rules computed in plain SQL; bad label input refused whole.
 */

function capture(seed: number): Buffer {
  const img = synthElectrode(seed, seed % 3 === 0 ? 'scratch' : null, { width: 240, height: 440 });
  return encodeTiff16(img.width, img.height, img.data, { compression: 'deflate' });
}

function query<T>(db: string, sql: string, ...params: unknown[]): T[] {
  const d = new Sqlite(db, { readonly: true });
  try {
    return d.prepare(sql).all(...params) as T[];
  } finally {
    d.close();
  }
}

describe('parts, bundles, labels and accuracy', () => {
  let broker: Mosquitto;
  let sub: Subscriber;
  let station: StationDirs;
  let daemon: DaemonProcess;
  let port: number;
  const files: string[] = [];
  beforeAll(async () => {
    port = await freePort();
    broker = new Mosquitto(port);
    await broker.start();
    sub = new Subscriber(port);
    await sub.start();
    station = makeStation({ port, settleMs: 200 });
    writeFileSync(station.config, readFileSync(station.config, 'utf8').replace('  settle_ms: 200\n',
      () => "  settle_ms: 200\n  fields:\n    path: '^(?<bundle>B[0-9]+)/(?<part>[^/]+)\\.tiff?$'\n    tags: true\n").replace('  reconnect_ms: 200\n', () => '  reconnect_ms: 200\n  label_topic: true\n'));
    daemon = new DaemonProcess(station.config);
    daemon.start();
    await daemon.waitFor(/watching the capture folder/);
    for (let b = 1; b <= 3; b++) {
      mkdirSync(join(station.captures, `B${b}`));
      for (let p = 1; p <= 4; p++) {
        const file = join(station.captures, `B${b}`, `part-${b}${p}.tif`);
        writeFileSync(file, capture(b * 10 + p));
        files.push(file);
      }
    }
    writeFileSync(join(station.captures, 'loose.tif'), capture(99)); // matches no bundle folder
    files.push(join(station.captures, 'loose.tif'));
    // the bundle and part in the TIFF's ImageDescription, written by tifffile
    const tagged = join(station.captures, 'tagged.tif');
    pythonInline('import numpy, sys, tifffile; tifffile.imwrite(sys.argv[1], (numpy.arange(240 * 440, dtype=numpy.uint16).reshape(440, 240) % 1000) + 1800, description="bundle=B9;part=P-900", metadata=None)', [tagged]);
    files.push(tagged);
    await until(() => query(station.db, 'SELECT 1 FROM inspections').length === files.length, 30_000, 'every capture recorded');
    await until(() => sub.verdicts.length >= files.length, 15_000, 'every verdict published');
  }, 120_000);
  afterAll(async () => {
    await daemon?.stop();
    await sub?.stop();
    await broker?.stop();
  });

  it('bundle and part in the audit row and the MQTT verdict; a path that does not match has nulls', () => {
    const rows = query<{ file_path: string; bundle: string | null; part_id: string | null; id: string }>(station.db, 'SELECT file_path, bundle, part_id, id FROM inspections');
    const byName = new Map(rows.map((r) => [r.file_path.slice(station.captures.length + 1), r]));
    expect(byName.get('B2/part-23.tif')).toMatchObject({ bundle: 'B2', part_id: 'part-23' });
    expect(byName.get('loose.tif')).toMatchObject({ bundle: null, part_id: null });
    expect(byName.get('tagged.tif')).toMatchObject({ bundle: 'B9', part_id: 'P-900' });
    const verdicts = new Map((sub.verdicts as unknown as Array<{ id: string; bundle: string | null; part: string | null }>).map((v) => [v.id, v]));
    for (const r of rows) expect(verdicts.get(r.id), r.file_path).toMatchObject({ bundle: r.bundle, part: r.part_id });
    // the model's flags ride in every verdict (the tiny demo is untrained; not judged by the fitness rule), as the row keeps them
    for (const v of verdicts.values()) expect((v as unknown as { model: unknown }).model).toMatchObject({ untrained: true, synthetic: false, fit: null });
    expect(query(station.db, 'SELECT DISTINCT model_untrained u, model_synthetic s, model_fit f FROM inspections')).toEqual([{ u: 1, s: 0, f: null }]);
  });

  it('labels by set and import (twice: no change), then audit accuracy --by bundle equals the same rules in SQL', () => {
    const rows = query<{ seq: number; id: string; file_path: string }>(station.db, 'SELECT seq, id, file_path FROM inspections ORDER BY seq');
    const db = ['--db', station.db];
    expect(cli(['label', 'set', `seq:${rows[0].seq}`, 'abnormal', '--by', 'anna', ...db]).code).toBe(0);
    expect(cli(['label', 'set', `file:${rows[1].file_path}`, 'normal', ...db]).code).toBe(0);
    const again = cli(['label', 'set', `file:${rows[1].file_path}`, 'normal', ...db]);
    expect(JSON.parse(again.stdout)).toMatchObject({ added: false });
    // a relative path: its end below capture.dir, or relative to the working directory (the same inspection, nothing added)
    const below = rows[1].file_path.slice(station.captures.length + 1);
    for (const p of [below, `captures/${below}`, `./${below}`, relative(process.cwd(), rows[1].file_path)]) {
      const r = cli(['label', 'set', `file:${p}`, 'normal', ...db]);
      expect(r.code, `${p}: ${r.stderr}`).toBe(0);
      expect(JSON.parse(r.stdout), p).toMatchObject({ inspection: rows[1].id, added: false });
    }
    const none = cli(['label', 'set', 'file:S9/nothing.tif', 'normal', ...db]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/LABEL_INVALID: file:S9\/nothing\.tif: no inspection of that file \(file: takes the path as recorded .* or its end below capture\.dir/);
    // a correction: the latest label counts
    expect(cli(['label', 'set', rows[0].id, 'normal', '--by', 'ben', '--note', 'dust, not a defect', ...db]).code).toBe(0);
    const csv = join(station.root, 'labels.csv');
    const lines = ['id,file,label,by,note'];
    rows.slice(2, 12).forEach((r, i) => lines.push(`${i % 2 ? r.id : ''},${i % 2 ? '' : r.file_path},${i % 3 ? 'normal' : 'abnormal'},qe,"line ${i}, checked"`));
    writeFileSync(csv, `${lines.join('\n')}\n`);
    const first = cli(['label', 'import', csv, ...db]);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ lines: 10, added: 10, unchanged: 0 });
    const second = cli(['label', 'import', csv, ...db]);
    expect(JSON.parse(second.stdout)).toMatchObject({ lines: 10, added: 0, unchanged: 10 });
    expect(query(station.db, 'SELECT 1 FROM labels')).toHaveLength(13);

    const out = cli(['audit', 'accuracy', '--by', 'bundle', '--format', 'csv', ...db]);
    expect(out.code, out.stderr).toBe(0);
    const [header, ...body] = out.stdout.trim().split('\n').map((l) => l.split(','));
    const got = body.map((cols) => Object.fromEntries(header.map((h, i) => [h, cols[i]])));
    // the same rules, written independently in SQL: the latest label per inspection; flag = abnormal predicted
    const want = query<{ grp: string; n: number; tp: number; fp: number; tn: number; fn: number }>(station.db, `
      WITH latest AS (SELECT l.inspection_id, l.label FROM labels l WHERE NOT EXISTS (SELECT 1 FROM labels m WHERE m.inspection_id = l.inspection_id AND m.id > l.id))
      SELECT coalesce(i.bundle, '(none)') AS grp, count(*) AS n,
        count(CASE WHEN i.verdict = 'flag' AND latest.label = 'abnormal' THEN 1 END) AS tp,
        count(CASE WHEN i.verdict = 'flag' AND latest.label = 'normal' THEN 1 END) AS fp,
        count(CASE WHEN i.verdict = 'pass' AND latest.label = 'normal' THEN 1 END) AS tn,
        count(CASE WHEN i.verdict = 'pass' AND latest.label = 'abnormal' THEN 1 END) AS fn
      FROM inspections i LEFT JOIN latest ON latest.inspection_id = i.id GROUP BY grp ORDER BY grp`);
    const ba = (r: { tp: number; fp: number; tn: number; fn: number }): string => {
      const recalls = [r.tp + r.fn ? r.tp / (r.tp + r.fn) : null, r.tn + r.fp ? r.tn / (r.tn + r.fp) : null].filter((x): x is number => x !== null);
      return recalls.length ? (recalls.reduce((a, b) => a + b, 0) / recalls.length).toString() : ''; // a fraction 0–1, as every rate in csv
    };
    const pooled = want.reduce((a, r) => ({ grp: 'Overall', n: a.n + r.n, tp: a.tp + r.tp, fp: a.fp + r.fp, tn: a.tn + r.tn, fn: a.fn + r.fn }), { grp: 'Overall', n: 0, tp: 0, fp: 0, tn: 0, fn: 0 });
    const expected = [...want, pooled];
    expect(got.map((g) => g.group)).toEqual(expected.map((w) => w.grp));
    for (const [i, w] of expected.entries()) {
      expect([got[i].n, got[i].tp, got[i].fp, got[i].tn, got[i].fn].map(Number), w.grp).toEqual([w.n, w.tp, w.fp, w.tn, w.fn]);
      expect(got[i].balanced_accuracy === '' ? '' : Number(got[i].balanced_accuracy).toFixed(9), w.grp).toBe(ba(w) === '' ? '' : Number(ba(w)).toFixed(9));
    }
    expect(pooled.tp + pooled.fp + pooled.tn + pooled.fn).toBe(12); // 12 labelled inspections
    expect(expected.map((w) => w.grp)).toEqual(['(none)', 'B1', 'B2', 'B3', 'B9', 'Overall']);
  });

  it('bad label input: one line naming it, exit 2, nothing imported', () => {
    const db = ['--db', station.db];
    const before = query(station.db, 'SELECT 1 FROM labels').length;
    const unknownRef = cli(['label', 'set', 'seq:999999', 'normal', ...db]);
    expect([unknownRef.code, unknownRef.stderr.trim().split('\n').length]).toEqual([2, 1]);
    expect(unknownRef.stderr).toMatch(/LABEL_INVALID: seq:999999: no such inspection/);
    const unknownLabel = cli(['label', 'set', 'seq:1', 'broken', ...db]);
    expect(unknownLabel.code).toBe(2);
    expect(unknownLabel.stderr).toMatch(/label 'broken': expected normal or abnormal/);
    const row = query<{ id: string }>(station.db, 'SELECT id FROM inspections ORDER BY seq LIMIT 1')[0];
    const cases: Array<[string, RegExp]> = [
      [`id,label\n${row.id},abnormal\n${row.id},maybe\n`, /line 3: label 'maybe'/],
      [`id,label\n${row.id},abnormal\nnot-an-id,normal\n`, /line 3: not-an-id: no such inspection/],
      [`id,label\n${row.id},abnormal\n${row.id},normal,extra\n`, /line 3: 3 fields, the header has 2/],
      [`id,label,note\n${row.id},abnormal,"never closed\n`, /a quoted field is not closed/],
      [`id,label,labelled_at\n${row.id},abnormal,yesterday-ish\n`, /line 2: labelled_at 'yesterday-ish': not a date/],
      ['who,what\nx,y\n', /line 1: the header needs 'label' and 'id' or 'file'/],
    ];
    for (const [text, message] of cases) {
      const file = join(station.root, 'bad.csv');
      writeFileSync(file, text);
      const r = cli(['label', 'import', file, ...db]);
      expect([r.code, r.stderr.trim().split('\n').length], text).toEqual([2, 1]);
      expect(r.stderr, text).toMatch(message);
    }
    expect(query(station.db, 'SELECT 1 FROM labels').length).toBe(before);
  });

  it('an HMI labels over MQTT (mqtt.label_topic): the reply on label/result carries the correlation id; a bad request says why', async () => {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`);
    try {
      const replies: Array<Record<string, unknown>> = [];
      client.on('message', (_t, p) => replies.push(JSON.parse(p.toString()) as Record<string, unknown>));
      await client.subscribeAsync('xray-qc/xray-1/label/result', { qos: 1 });
      const row = query<{ id: string }>(station.db, 'SELECT id FROM inspections ORDER BY seq DESC LIMIT 1')[0];
      await client.publishAsync('xray-qc/xray-1/label/set', JSON.stringify({ id: row.id, label: 'abnormal', by: 'hmi-3', note: 'seen at the screen', correlation_id: 'c-1' }), { qos: 1 });
      await client.publishAsync('xray-qc/xray-1/label/set', JSON.stringify({ id: row.id, label: 'sort-of', correlation_id: 'c-2' }), { qos: 1 });
      await until(() => replies.length >= 2, 10_000, 'two replies');
      expect(replies.find((r) => r.correlation_id === 'c-1')).toMatchObject({ result: 'ok', inspection: row.id, added: true });
      expect(replies.find((r) => r.correlation_id === 'c-2')).toMatchObject({ result: 'error', code: 'LABEL_INVALID', message: "label 'sort-of': expected normal or abnormal" });
      expect(query(station.db, "SELECT 1 FROM labels WHERE source = 'mqtt' AND labelled_by = 'hmi-3'")).toHaveLength(1);
    } finally {
      await client.endAsync();
    }
  });

  it('review list: flags without a label, oldest first', () => {
    const r = cli(['review', 'list', '--unlabelled', '--format', 'json', '--db', station.db]);
    expect(r.code, r.stderr).toBe(0);
    const listed = r.stdout.trim() ? r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { seq: number; verdict: string; label: string | null }) : [];
    const want = query<{ seq: number }>(station.db, `SELECT i.seq FROM inspections i WHERE i.verdict = 'flag'
      AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.inspection_id = i.id) ORDER BY i.seq`);
    expect(listed.map((x) => x.seq)).toEqual(want.map((w) => w.seq));
    for (const x of listed) expect([x.verdict, x.label]).toEqual(['flag', null]);
  });
  it('the capture that matched no bundle is counted: the stop summary says so', async () => {
    await daemon.stop();
    const stop = query<{ data: string }>(station.db, "SELECT data FROM events WHERE kind = 'stop' ORDER BY id DESC LIMIT 1");
    expect(JSON.parse(stop[0].data).summary).toMatch(/\(1 without bundle or part: capture\.fields did not match\)/);
  });
});
