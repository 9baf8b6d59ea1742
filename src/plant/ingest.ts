import { createHash } from 'node:crypto';
import type pg from 'pg';
import { z } from 'zod';
import { formatIssues } from '../model/manifest.js';
import { ensurePartitions } from './schema.js';

/**
 * One batch into the plant database, in one transaction (docs/plant.md): verdicts kept once per
 * inspection id (`received`), labels once per station label id; the same key with a different
 * payload is kept as first seen, and an `alerts` row and a log line say so; a message that is no
 * verdict or label is an `alerts` row (`invalid`). Whoever calls it acknowledges the batch's
 * messages only after it returned — after COMMIT.
 */

const iso = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'an ISO-8601 time');
const text = z.string().nullable();

/** The station's verdict message (docs/mqtt.md); fields this collector does not store pass. */
export const VerdictSchema = z.looseObject({
  id: z.string().min(1).max(200),
  seq: z.number().int().positive(),
  station_id: z.string().min(1).max(64),
  file: z.string(),
  captured_at: iso.nullable(),
  scored_at: iso,
  verdict: z.enum(['pass', 'flag', 'error']),
  reason: z.string(),
  p_abnormal: z.number().nullable(),
  threshold: z.number().nullable(),
  model: z.object({ name: z.string(), version: z.number().int(), sha256: z.string(), bundle_sha256: text.optional() }).nullable(),
  latency_ms: z.number().nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  bundle: text.optional(),
  part: text.optional(),
});
export type Verdict = z.infer<typeof VerdictSchema>;

/** The station's label message (`<prefix>/label`, docs/mqtt.md): one row of its `labels` table. */
export const LabelSchema = z.strictObject({
  station_id: z.string().min(1).max(64),
  label_id: z.number().int().positive(),
  inspection_id: z.string().min(1).max(200),
  label: z.enum(['normal', 'abnormal']),
  labelled_by: text,
  note: text,
  source: z.string(),
  labelled_at: iso,
});
export type LabelMessage = z.infer<typeof LabelSchema>;

export type Item =
  | { kind: 'verdict'; msg: Verdict; sha: string; source: string }
  | { kind: 'label'; msg: LabelMessage; sha: string; source: string }
  | { kind: 'invalid'; where: string; raw: string; why: string };

/** sha256 of the JSON with its keys sorted: the same message, however it was serialised. */
export function payloadSha(value: unknown): string {
  const canon = (v: unknown): unknown => (Array.isArray(v) ? v.map(canon) : v && typeof v === 'object'
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon((v as Record<string, unknown>)[k])])) : v);
  return createHash('sha256').update(JSON.stringify(canon(value))).digest('hex');
}

/** A message from `topic` as an ingest item: its kind follows the topic's last level. */
export function parseMessage(topic: string, payload: Buffer | string, source = 'mqtt'): Item {
  const raw = payload.toString();
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { kind: 'invalid', where: topic, raw, why: 'not JSON' };
  }
  if (topic.endsWith('/label')) {
    const r = LabelSchema.safeParse(json);
    return r.success ? { kind: 'label', msg: r.data, sha: payloadSha(json), source } : { kind: 'invalid', where: topic, raw, why: formatIssues(r.error) };
  }
  const r = VerdictSchema.safeParse(json);
  return r.success ? { kind: 'verdict', msg: r.data, sha: payloadSha(json), source } : { kind: 'invalid', where: topic, raw, why: formatIssues(r.error) };
}

export interface IngestResult { verdicts: number; labels: number; duplicates: number; conflicts: Array<{ key: string; message: string }>; invalid: number; partitions: string[] }

/** Runs the batch in one transaction on `client`; throws (rolled back) when the database refuses. */
export async function ingest(client: pg.ClientBase, items: Item[], knownPartitions: ReadonlySet<string>): Promise<IngestResult> {
  const result: IngestResult = { verdicts: 0, labels: 0, duplicates: 0, conflicts: [], invalid: 0, partitions: [] };
  const alerts: Array<[kind: string, station: string | null, ref: string, message: string, payload: string | null]> = [];
  const verdicts = firstOfEach(items.flatMap((i) => (i.kind === 'verdict' ? [i] : [])), (i) => i.msg.id, alerts, 'verdict');
  const labels = firstOfEach(items.flatMap((i) => (i.kind === 'label' ? [i] : [])), (i) => `${i.msg.station_id}:${i.msg.label_id}`, alerts, 'label');
  for (const i of items) if (i.kind === 'invalid') alerts.push(['invalid', null, i.where, i.why, i.raw.slice(0, 10_000)]);
  result.invalid = items.filter((i) => i.kind === 'invalid').length;
  await client.query('BEGIN');
  try {
    result.partitions = await ensurePartitions(client, verdicts.map((v) => v.msg.scored_at), knownPartitions);
    if (verdicts.length) {
      const col = <T>(f: (v: Verdict) => T): T[] => verdicts.map((v) => f(v.msg));
      const fresh = await client.query<{ id: string }>(
        `INSERT INTO received (id, station_id, seq, scored_at, payload_sha256, source)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[], $5::text[], $6::text[])
         ON CONFLICT DO NOTHING RETURNING id`,
        [col((v) => v.id), col((v) => v.station_id), col((v) => v.seq), col((v) => v.scored_at), verdicts.map((v) => v.sha), verdicts.map((v) => v.source)]);
      const isNew = new Set(fresh.rows.map((r) => r.id));
      const rows = verdicts.filter((v) => isNew.has(v.msg.id)).map((v) => v.msg);
      if (rows.length) {
        const c = <T>(f: (v: Verdict) => T): T[] => rows.map(f);
        await client.query(
          `INSERT INTO inspections (id, station_id, seq, file, captured_at, scored_at, verdict, reason, p_abnormal, threshold, model_name,
             model_version, model_sha256, bundle_sha256, latency_ms, error_code, error_message, bundle, part_id)
           SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::text[], $8::text[],
             $9::float8[], $10::float8[], $11::text[], $12::int[], $13::text[], $14::text[], $15::float8[], $16::text[], $17::text[], $18::text[], $19::text[])`,
          [c((v) => v.id), c((v) => v.station_id), c((v) => v.seq), c((v) => v.file), c((v) => v.captured_at), c((v) => v.scored_at), c((v) => v.verdict),
            c((v) => v.reason), c((v) => v.p_abnormal), c((v) => v.threshold), c((v) => v.model?.name ?? null), c((v) => v.model?.version ?? null),
            c((v) => v.model?.sha256 ?? null), c((v) => v.model?.bundle_sha256 ?? null), c((v) => v.latency_ms), c((v) => v.error?.code ?? null),
            c((v) => v.error?.message ?? null), c((v) => v.bundle ?? null), c((v) => v.part ?? null)]);
      }
      result.verdicts = rows.length;
      const seen = verdicts.filter((v) => !isNew.has(v.msg.id));
      if (seen.length) {
        const kept = await client.query<{ id: string; station_id: string; seq: string; payload_sha256: string }>(
          'SELECT id, station_id, seq, payload_sha256 FROM received WHERE id = ANY($1) OR (station_id, seq) IN (SELECT * FROM unnest($2::text[], $3::bigint[]))',
          [seen.map((v) => v.msg.id), seen.map((v) => v.msg.station_id), seen.map((v) => v.msg.seq)]);
        const byId = new Map(kept.rows.map((r) => [r.id, r]));
        const bySeq = new Map(kept.rows.map((r) => [`${r.station_id}:${r.seq}`, r]));
        for (const v of seen) {
          const same = byId.get(v.msg.id);
          if (same && same.payload_sha256 === v.sha) { result.duplicates++; continue; }
          const other = bySeq.get(`${v.msg.station_id}:${v.msg.seq}`);
          const why = same ? `inspection ${v.msg.id} arrived again with a different payload; the first is kept`
            : `inspection ${v.msg.id}: station ${v.msg.station_id} seq ${v.msg.seq} is already inspection ${other?.id ?? '?'}; not stored`;
          alerts.push(['conflict', v.msg.station_id, v.msg.id, why, JSON.stringify(v.msg)]);
        }
      }
    }
    if (labels.length) {
      const col = <T>(f: (l: LabelMessage) => T): T[] => labels.map((l) => f(l.msg));
      const fresh = await client.query<{ station_id: string; label_id: string }>(
        `INSERT INTO labels (station_id, label_id, inspection_id, label, labelled_by, note, source, labelled_at, payload_sha256)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::text[])
         ON CONFLICT DO NOTHING RETURNING station_id, label_id`,
        [col((l) => l.station_id), col((l) => l.label_id), col((l) => l.inspection_id), col((l) => l.label), col((l) => l.labelled_by), col((l) => l.note),
          col((l) => l.source), col((l) => l.labelled_at), labels.map((l) => l.sha)]);
      const isNew = new Set(fresh.rows.map((r) => `${r.station_id}:${r.label_id}`));
      result.labels = isNew.size;
      const seen = labels.filter((l) => !isNew.has(`${l.msg.station_id}:${l.msg.label_id}`));
      if (seen.length) {
        const kept = await client.query<{ station_id: string; label_id: string; payload_sha256: string }>(
          'SELECT station_id, label_id, payload_sha256 FROM labels WHERE (station_id, label_id) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))',
          [seen.map((l) => l.msg.station_id), seen.map((l) => l.msg.label_id)]);
        const sha = new Map(kept.rows.map((r) => [`${r.station_id}:${r.label_id}`, r.payload_sha256]));
        for (const l of seen) {
          const key = `${l.msg.station_id}:${l.msg.label_id}`;
          if (sha.get(key) === l.sha) result.duplicates++;
          else alerts.push(['conflict', l.msg.station_id, key, `label ${key} arrived again with a different payload; the first is kept`, JSON.stringify(l.msg)]);
        }
      }
    }
    for (const a of alerts) {
      await client.query('INSERT INTO alerts (kind, station_id, ref, message, payload) VALUES ($1, $2, $3, $4, $5)', a);
      if (a[0] === 'conflict') result.conflicts.push({ key: a[2], message: a[3] });
    }
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** The first item of each key; a later one with another payload is an alert, with the same payload a duplicate. */
function firstOfEach<T extends { sha: string; msg: unknown }>(items: T[], key: (i: T) => string, alerts: Array<[string, string | null, string, string, string | null]>, what: string): T[] {
  const first = new Map<string, T>();
  for (const i of items) {
    const k = key(i);
    const had = first.get(k);
    if (!had) first.set(k, i);
    else if (had.sha !== i.sha) alerts.push(['conflict', (i.msg as { station_id: string }).station_id, k, `${what} ${k} arrived twice in one batch with different payloads; only the first is considered`, JSON.stringify(i.msg)]);
  }
  return [...first.values()];
}
