import type { ErrorCode } from '../errors.js';

/**
 * The messages between the stages of the capture path, and the events between components. One
 * capture is, in turn: a `QueuedCapture` (capture → the queue), a `PreparedCapture` (prepare;
 * the same type on both sides of the worker boundary), a `Scored` (infer + decide) and an
 * `AuditRecord` (record), which the publisher turns into the verdict message.
 */

/** Why a capture passed or was flagged. */
export type Reason = 'normal' | 'anomaly' | 'uncertain';

/** A capture the watcher found complete, as the queue holds it. */
export interface QueuedCapture {
  file: string;
  bytes: number;
  mtimeMs: number;
}

/** What the file was when it was read (null when it could not be): its identity in the audit trail. */
export interface FileStat {
  size: number;
  mtimeMs: number;
}

export interface CaptureError {
  code: ErrorCode;
  message: string;
  /** For INTERNAL_ERROR: where it was thrown (logged, never recorded). */
  stack?: string;
}

/**
 * A capture after preparation (read, hash, decode, convert, resize, normalise): its input tensor,
 * or why it cannot be scored. `tensor` lies in shared memory, written in place by the worker.
 */
export type PreparedCapture = PreparedOk | PreparedFailed;

export interface PreparedOk {
  ok: true;
  file: string;
  stat: FileStat;
  sha256: string;
  width: number;
  height: number;
  tensor: Float32Array;
  /** Per-image bounds for the local and mixed conversions. */
  localBounds: { min: number; max: number } | null;
  decodeMs: number;
  preprocessMs: number;
  /** The TIFF's ImageDescription and DocumentName, where set (capture.fields may read them). */
  text?: { imageDescription?: string; documentName?: string };
  /** What the conversion saw (drift): clipped fractions and percentiles of the 16-bit values. */
  stats: IntensityStats;
}

/** Fractions of pixels below / above the model's global bounds (null without bounds) and percentiles 0.01, 50, 99.99. */
export interface IntensityStats { clipLow: number | null; clipHigh: number | null; p0_01: number; p50: number; p99_99: number }

export interface PreparedFailed {
  ok: false;
  file: string;
  stat: FileStat | null;
  sha256: string | null;
  error: CaptureError;
}

/** The model a capture was scored with, as verdicts and the audit trail name it. */
export interface ModelRef {
  name: string;
  version: number;
  sha256: string;
  untrained?: boolean;
  /** Trained on synthetic captures only (the demo model). */
  synthetic?: boolean;
  /** The fitness rule's verdict from the manifest (absent: not judged). */
  fit?: boolean;
}

export interface Timings {
  decode: number;
  preprocess: number;
  infer: number;
  total: number;
}

/** A heat map as the model's graph gives it: h×w row-major values over the last block's grid. */
export interface HeatMap {
  data: Float32Array;
  height: number;
  width: number;
}

/**
 * Where the model saw the anomaly (the verdict's `where`): the centre of the heat map's hottest
 * cell in capture pixels, and its strength — the cell's Grad-CAM value, its first-order share of
 * the abnormal-minus-normal logit (the cells sum to the linearised logit, D43).
 */
export interface Where {
  x: number;
  y: number;
  strength: number;
}

/** A heat map as stored (table `heatmaps`): 8-bit cells, value = cell / 255 · scale, scale = the maximum. */
export interface StoredHeatMap {
  width: number;
  height: number;
  scale: number;
  cells: Uint8Array;
}

/** A capture after inference and the decision: its verdict, or the error that is its verdict. */
export type Scored = ScoredOk | ScoredFailed;

export interface ScoredOk {
  file: string;
  verdict: 'pass' | 'flag';
  reason: Reason;
  p_abnormal: number;
  threshold: number;
  model: ModelRef;
  width: number;
  height: number;
  local_bounds?: { min: number; max: number };
  /** For a model with a heat-map output: the map as stored, and its hottest cell. */
  heatmap?: StoredHeatMap;
  where?: Where | null;
  timings_ms: Timings;
}

export interface ScoredFailed {
  file: string;
  verdict: 'error';
  reason: ErrorCode;
  error: { code: ErrorCode; message: string };
}

export function failedScore(file: string, error: CaptureError): ScoredFailed {
  return { file, verdict: 'error', reason: error.code, error: { code: error.code, message: error.message } };
}

/** One audit row, as the record stage writes it (`seq` and `id` are assigned on insert). */
export interface AuditRecord {
  station_id: string;
  file_path: string;
  file_sha256: string | null;
  file_bytes: number | null;
  file_mtime_ms: number | null;
  width: number | null;
  height: number | null;
  captured_at: string | null;
  scored_at: string;
  verdict: 'pass' | 'flag' | 'error';
  reason: string;
  p_abnormal: number | null;
  threshold: number | null;
  model_name: string | null;
  model_version: number | null;
  model_sha256: string | null;
  /** sha256 of the bundle's manifest.json: tells apart bundles that share an ONNX file. */
  bundle_sha256: string | null;
  conversion: string | null;
  bounds_min: number | null;
  bounds_max: number | null;
  local_min: number | null;
  local_max: number | null;
  decode_ms: number | null;
  preprocess_ms: number | null;
  infer_ms: number | null;
  total_ms: number | null;
  error_code: string | null;
  error_message: string | null;
  /** The production bundle and part (capture.fields), or null. */
  bundle: string | null;
  part_id: string | null;
  clip_low: number | null;
  clip_high: number | null;
  p0_01: number | null;
  p50: number | null;
  p99_99: number | null;
  /** The manifest's flags (1/0; fit: NULL when not judged); absent or null in rows from before schema 8. */
  model_untrained?: number | null;
  model_synthetic?: number | null;
  model_fit?: number | null;
}

/** A capture's production bundle and part id (capture.fields), null where unknown. */
export interface PartFields { bundle: string | null; part: string | null }

/** Where a station fault comes from; each source has at most one fault at a time. */
export type FaultSource = 'start' | 'record' | 'queue' | 'capture-folder' | 'model';

/** The typed events between the station's components (src/events.ts carries them). */
export interface StationEvents {
  /** A capture was put in the queue. */
  'capture.queued': { file: string };
  /** An audit row and its outbox message were committed. */
  'verdict.recorded': { seq: number; id: string; file: string; sha256: string | null; verdict: Scored['verdict']; reason: Scored['reason']; bundleSha256: string; stats: IntensityStats | null };
  /** A warning of one source began (`message`) or ended (null): the status topic's `warnings`. */
  'warning.changed': { source: 'drift' | 'model'; message: string | null };
  /** A fault of one source began (`message`) or ended (null). */
  'fault.changed': { source: FaultSource; message: string | null };
  /** A model became the serving one (at start, by sync, an operator or the fallback); `previous`: the folder it replaced. */
  'model.activated': { model: ModelRef; bundleSha256: string; provider: string; previous: string | null; how: string };
}
