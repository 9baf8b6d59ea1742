import { randomUUID } from 'node:crypto';
import type { EventKind } from '../errors.js';
import type { AuditRecord, QueuedCapture, StoredHeatMap, Where } from '../pipeline/messages.js';
import type { Db } from './database.js';
import type { Label } from './labels.js';

type LabelRow = { id: number; inspection_id: string; label: Label; labelled_by: string | null; note: string | null; source: string; labelled_at: string };

/** The verdict message on `<prefix>/verdict` (docs/mqtt.md): the audit row as the line reads it. */
export interface VerdictMessage extends Pick<AuditRecord, 'station_id' | 'captured_at' | 'scored_at' | 'verdict' | 'reason' | 'p_abnormal' | 'threshold'> {
  id: string;
  seq: number;
  file: string;
  model: { name: string; version: number; sha256: string; bundle_sha256: string | null; untrained?: boolean; synthetic?: boolean; fit?: boolean | null } | null;
  latency_ms: number | null;
  error: { code: string; message: string } | null;
  /** The production bundle and part id (capture.fields), null when unknown. */
  bundle: string | null;
  part: string | null;
  /** The heat map's hottest cell in capture pixels, for a model with a heat map (else absent). */
  where?: Where | null;
}

export interface OutboxRow { seq: number; topic: string; payload: string }

const COLUMNS = [
  'id', 'station_id', 'file_path', 'file_sha256', 'file_bytes', 'file_mtime_ms', 'width', 'height', 'captured_at', 'scored_at',
  'verdict', 'reason', 'p_abnormal', 'threshold', 'model_name', 'model_version', 'model_sha256', 'bundle_sha256', 'conversion', 'bounds_min',
  'bounds_max', 'local_min', 'local_max', 'decode_ms', 'preprocess_ms', 'infer_ms', 'total_ms', 'error_code', 'error_message', 'bundle',
  'part_id', 'clip_low', 'clip_high', 'p0_01', 'p50', 'p99_99', 'model_untrained', 'model_synthetic', 'model_fit',
];

const NO_FLAGS = { model_untrained: null, model_synthetic: null, model_fit: null };

/**
 * The verdict's model: name, version, hashes and — for rows of schema 8 on — the manifest's flags,
 * so that the line sees a demonstration or an unfit model in every verdict (docs/mqtt.md).
 */
function modelOf(row: AuditRecord): VerdictMessage['model'] {
  if (!row.model_name || row.model_version === null || !row.model_sha256) return null;
  const m: NonNullable<VerdictMessage['model']> = { name: row.model_name, version: row.model_version, sha256: row.model_sha256, bundle_sha256: row.bundle_sha256 };
  if (row.model_synthetic === null || row.model_synthetic === undefined) return m;
  return { ...m, untrained: row.model_untrained === 1, synthetic: row.model_synthetic === 1, fit: row.model_fit === null || row.model_fit === undefined ? null : row.model_fit === 1 };
}

export function verdictMessage(row: AuditRecord & { id: string; seq: number }, where?: Where | null): VerdictMessage {
  return {
    id: row.id,
    seq: row.seq,
    station_id: row.station_id,
    file: row.file_path,
    captured_at: row.captured_at,
    scored_at: row.scored_at,
    verdict: row.verdict,
    reason: row.reason,
    p_abnormal: row.p_abnormal,
    threshold: row.threshold,
    model: modelOf(row),
    latency_ms: row.total_ms,
    error: row.error_code ? { code: row.error_code, message: row.error_message ?? '' } : null,
    bundle: row.bundle,
    part: row.part_id,
    ...(where !== undefined ? { where } : {}),
  };
}

/** Every statement the daemon runs against the audit database, prepared once. */
export class Store {
  private readonly s;

  constructor(private readonly db: Db) {
    this.s = {
      enqueue: db.prepare(`INSERT INTO queue (file_path, file_bytes, file_mtime_ms, enqueued_at) VALUES (?, ?, ?, ?)
        ON CONFLICT (file_path) DO UPDATE SET file_bytes = excluded.file_bytes, file_mtime_ms = excluded.file_mtime_ms`),
      queueHead: db.prepare('SELECT file_path, file_bytes, file_mtime_ms FROM queue ORDER BY file_mtime_ms, file_path LIMIT ?'),
      queueCount: db.prepare('SELECT count(*) AS n FROM queue'),
      dequeue: db.prepare('DELETE FROM queue WHERE file_path = ?'),
      queued: db.prepare('SELECT 1 FROM queue WHERE file_path = ?'),
      byStat: db.prepare('SELECT 1 FROM inspections WHERE file_path = ? AND file_bytes = ? AND file_mtime_ms = ? LIMIT 1'),
      bySha: db.prepare('SELECT 1 FROM inspections WHERE file_path = ? AND file_sha256 = ? LIMIT 1'),
      insert: db.prepare(`INSERT INTO inspections (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((c) => `@${c}`).join(', ')})`),
      heatmapInsert: db.prepare('INSERT INTO heatmaps (inspection_id, width, height, scale, cells, where_x, where_y, strength) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      outboxInsert: db.prepare('INSERT INTO outbox (seq, topic, payload, created_at) VALUES (?, ?, ?, ?)'),
      outboxPending: db.prepare('SELECT seq, topic, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?'),
      outboxCount: db.prepare('SELECT count(*) AS n FROM outbox'),
      published: db.prepare('UPDATE inspections SET published_at = ? WHERE seq = ? AND published_at IS NULL'),
      outboxDelete: db.prepare('DELETE FROM outbox WHERE seq = ?'),
      labelsPending: db.prepare('SELECT id, inspection_id, label, labelled_by, note, source, labelled_at FROM labels WHERE published_at IS NULL AND id > ? ORDER BY id LIMIT ?'),
      labelPublished: db.prepare('UPDATE labels SET published_at = ? WHERE id = ?'),
      event: db.prepare('INSERT INTO events (at, kind, message, data) VALUES (?, ?, ?, ?)'),
      modelSeen: db.prepare(`INSERT INTO models (name, version, sha256, dir, first_seen_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (name, version, sha256) DO NOTHING`),
      modelDeactivateOthers: db.prepare(`UPDATE models SET deactivated_at = ? WHERE activated_at IS NOT NULL AND deactivated_at IS NULL
        AND NOT (name = ? AND version = ? AND sha256 = ?)`),
      modelActivate: db.prepare(`UPDATE models SET activated_at = ?, deactivated_at = NULL, bundle_sha256 = ? WHERE name = ? AND version = ? AND sha256 = ?`),
      activation: db.prepare(`INSERT INTO model_activations (at, name, version, model_sha256, bundle_sha256, dir, how, previous)
        VALUES (@at, @name, @version, @sha256, @bundleSha256, @dir, @how, @previous)`),
    };
  }

  enqueue(row: { file_path: string; file_bytes: number; file_mtime_ms: number }): void {
    this.s.enqueue.run(row.file_path, row.file_bytes, row.file_mtime_ms, new Date().toISOString());
  }

  /** The oldest queued captures (by mtime, then path). */
  queueHead(limit: number): QueuedCapture[] {
    return (this.s.queueHead.all(limit) as Array<{ file_path: string; file_bytes: number; file_mtime_ms: number }>)
      .map((r) => ({ file: r.file_path, bytes: r.file_bytes, mtimeMs: r.file_mtime_ms }));
  }

  queueCount(): number {
    return (this.s.queueCount.get() as { n: number }).n;
  }

  isQueued(path: string): boolean {
    return this.s.queued.get(path) !== undefined;
  }

  dequeue(path: string): void {
    this.s.dequeue.run(path);
  }

  /** Cheap identity check (no hashing): a row for this path with the same size and mtime. */
  auditedByStat(path: string, bytes: number, mtimeMs: number): boolean {
    return this.s.byStat.get(path, bytes, mtimeMs) !== undefined;
  }

  /** The capture identity: this path with this content. */
  auditedBySha(path: string, sha256: string): boolean {
    return this.s.bySha.get(path, sha256) !== undefined;
  }

  /**
   * The audit row, its outbox message and the queue removal in one transaction: a crash leaves
   * either all three or none.
   */
  record(row: AuditRecord, topic: string, heat?: { map: StoredHeatMap; where: Where | null }): { seq: number; id: string; message: VerdictMessage } {
    return this.db.transaction(() => {
      const id = randomUUID();
      const seq = Number(this.s.insert.run({ ...NO_FLAGS, ...row, id }).lastInsertRowid);
      if (heat) {
        const m = heat.map;
        this.s.heatmapInsert.run(id, m.width, m.height, m.scale, Buffer.from(m.cells.buffer, m.cells.byteOffset, m.cells.byteLength), heat.where?.x ?? null, heat.where?.y ?? null, heat.where?.strength ?? null);
      }
      const message = verdictMessage({ ...row, id, seq }, heat ? heat.where : undefined);
      this.s.outboxInsert.run(seq, topic, JSON.stringify(message), row.scored_at);
      this.s.dequeue.run(row.file_path);
      return { seq, id, message };
    })();
  }

  outboxPending(afterSeq: number, limit: number): OutboxRow[] {
    return this.s.outboxPending.all(afterSeq, limit) as OutboxRow[];
  }

  /** Labels not yet acknowledged by the broker (written by any process: the CLI, MQTT requests). */
  labelsPending(afterId: number, limit: number): LabelRow[] {
    return this.s.labelsPending.all(afterId, limit) as LabelRow[];
  }

  markLabelPublished(id: number, at: string): void {
    this.s.labelPublished.run(at, id);
  }

  outboxCount(): number {
    return (this.s.outboxCount.get() as { n: number }).n;
  }

  markPublished(seq: number, at: string): void {
    this.db.transaction(() => {
      this.s.published.run(at, seq);
      this.s.outboxDelete.run(seq);
    })();
  }

  /** A shadow candidate's score of an inspection (quality/shadow.ts). */
  shadowScore(r: { inspection_id: string; model_name: string; model_version: number; bundle_sha256: string; p_abnormal: number | null; verdict: string; reason: string; ms: number | null }): void {
    this.db.prepare(`INSERT INTO shadow_scores (inspection_id, model_name, model_version, bundle_sha256, p_abnormal, verdict, reason, ms, scored_at)
      VALUES (@inspection_id, @model_name, @model_version, @bundle_sha256, @p_abnormal, @verdict, @reason, @ms, @scored_at)`).run({ ...r, scored_at: new Date().toISOString() });
  }

  event(kind: EventKind, message: string, data?: unknown): void {
    this.s.event.run(new Date().toISOString(), kind, message, data === undefined ? null : JSON.stringify(data));
  }

  /**
   * A bundle started serving: `models` keeps one row per bundle (its latest activation), and
   * `model_activations` one row per activation, never changed — the history.
   */
  modelActivated(m: { name: string; version: number; sha256: string; bundleSha256: string; dir: string; how: string; previous: string | null }): void {
    const now = new Date().toISOString();
    this.db.transaction(() => {
      this.s.modelSeen.run(m.name, m.version, m.sha256, m.dir, now);
      this.s.modelDeactivateOthers.run(now, m.name, m.version, m.sha256);
      this.s.modelActivate.run(now, m.bundleSha256, m.name, m.version, m.sha256);
      this.s.activation.run({ at: now, ...m });
    })();
  }
}
