import type { Bundle } from '../model/bundle.js';
import type { AuditRecord, PartFields, PreparedCapture, QueuedCapture, Scored } from '../pipeline/messages.js';

/**
 * The audit row for one capture: what was read, with which model and bounds, the verdict, and
 * either its score and timings or its error.
 */
export function auditRecord(stationId: string, capture: QueuedCapture, bundle: Bundle, prepared: PreparedCapture, scored: Scored, scoredAt: Date, fields: PartFields = { bundle: null, part: null }): AuditRecord {
  const m = bundle.manifest;
  // What could not be read (a FIFO, a dangling link, a link out of the folder) keeps the stat the
  // watcher queued it with: the identity a rescan or restart checks, so it is recorded once.
  const stat = prepared.stat ?? { size: capture.bytes, mtimeMs: capture.mtimeMs };
  const base = {
    station_id: stationId,
    file_path: capture.file,
    file_sha256: prepared.sha256,
    file_bytes: stat.size,
    file_mtime_ms: stat.mtimeMs,
    captured_at: new Date(stat.mtimeMs).toISOString(),
    scored_at: scoredAt.toISOString(),
    threshold: m.decision.threshold,
    model_name: m.name,
    model_version: m.version,
    model_sha256: bundle.modelSha256,
    model_untrained: m.untrained ? 1 : 0,
    model_synthetic: m.synthetic ? 1 : 0,
    model_fit: m.fit === undefined ? null : m.fit ? 1 : 0,
    bundle_sha256: bundle.manifestSha256,
    conversion: m.preprocess.conversion,
    bounds_min: m.preprocess.bounds?.min ?? null,
    bounds_max: m.preprocess.bounds?.max ?? null,
    bundle: fields.bundle,
    part_id: fields.part,
    clip_low: prepared.ok ? prepared.stats.clipLow : null,
    clip_high: prepared.ok ? prepared.stats.clipHigh : null,
    p0_01: prepared.ok ? prepared.stats.p0_01 : null,
    p50: prepared.ok ? prepared.stats.p50 : null,
    p99_99: prepared.ok ? prepared.stats.p99_99 : null,
  };
  if (scored.verdict === 'error') {
    return {
      ...base, verdict: 'error', reason: scored.reason, width: null, height: null, p_abnormal: null, local_min: null, local_max: null,
      decode_ms: null, preprocess_ms: null, infer_ms: null, total_ms: null, error_code: scored.error.code, error_message: scored.error.message,
    };
  }
  const t = scored.timings_ms;
  return {
    ...base, verdict: scored.verdict, reason: scored.reason, width: scored.width, height: scored.height, p_abnormal: scored.p_abnormal,
    local_min: scored.local_bounds?.min ?? null, local_max: scored.local_bounds?.max ?? null,
    decode_ms: t.decode, preprocess_ms: t.preprocess, infer_ms: t.infer, total_ms: t.total, error_code: null, error_message: null,
  };
}
