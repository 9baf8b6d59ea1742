/**
 * The one table of error codes, for the whole program: a capture's verdict, a model that does not
 * load, a refused sync, bad config, a failed start, our own bug. Every code is stable (users grep
 * logs and SQL for them) and is documented in docs/scoring.md; a test keeps the two in step.
 */
export const ERROR_CODES = {
  FILE_UNREADABLE: 'The file could not be read (missing, not a regular file, permissions, I/O error).',
  FILE_OUTSIDE_CAPTURE_DIR: 'The capture is a link to a file outside the capture folder (not followed).',
  TIFF_NOT_TIFF: 'The file does not start with a TIFF or BigTIFF header.',
  TIFF_TRUNCATED: 'The file ends before the data its header or directories point to.',
  TIFF_BAD_OFFSET: 'A directory, tag value or image block lies outside the file.',
  TIFF_IFD_LOOP: 'The chain of image directories loops or is implausibly long.',
  TIFF_BAD_TAG: 'A required tag is missing, has the wrong type or an inconsistent value.',
  TIFF_EMPTY_IMAGE: 'Width or height is 0.',
  TIFF_TOO_LARGE: 'The image has more pixels than the configured limit.',
  TIFF_UNSUPPORTED_BITS: 'Bits per sample is not 16.',
  TIFF_UNSUPPORTED_SAMPLE_FORMAT: 'Samples are signed integers or floating point, not unsigned.',
  TIFF_UNSUPPORTED_SAMPLES: 'More than one sample per pixel (RGB, alpha, extra samples).',
  TIFF_UNSUPPORTED_PHOTOMETRIC: 'Photometric interpretation other than MinIsBlack / MinIsWhite.',
  TIFF_UNSUPPORTED_COMPRESSION: 'Compression other than none, LZW, Deflate, PackBits or Zstandard (e.g. JPEG).',
  TIFF_UNSUPPORTED_PREDICTOR: 'Predictor other than none or horizontal (e.g. floating point).',
  TIFF_CORRUPT_DATA: 'A compressed block does not decode to the size the header declares.',
  MODEL_NOT_FOUND: 'No model bundle at the given path, or the repository has no active bundle.',
  MODEL_MANIFEST_INVALID: 'manifest.json is missing, not JSON, or fails the schema.',
  MODEL_FILE_MISMATCH: 'A file listed in the manifest is missing or its size or sha256 differs.',
  MODEL_GRAPH_MISMATCH: "The ONNX graph's input or output names or shapes differ from the manifest.",
  MODEL_UNFIT: 'The bundle failed the fitness rule when it was trained (manifest fit: false): `models activate` and `models shadow` refuse it unless --force.',
  MODEL_DID_WORSE: '`models activate`: the bundle ran as a shadow candidate and did worse than the active model on 30 or more labelled captures; --force activates it anyway.',
  MODEL_LOAD_FAILED: 'ONNX Runtime could not load the model with any configured provider.',
  INFER_FAILED: 'ONNX Runtime failed while running the model.',
  INFER_NON_FINITE: 'The model returned NaN or infinite values.',
  INFER_WORKER_EXITED: 'The inference worker thread stopped unexpectedly.',
  PREPARE_WORKER_EXITED: 'The preparation worker (decode + preprocess) stopped while handling this capture; it is restarted.',
  PACK_INVALID_ARGUMENT: 'A `model pack` option is missing or malformed.',
  CONFIG_INVALID: 'The config file is missing, not YAML, or fails the schema (each finding as `path: message`).',
  START_FAILED: 'The station could not start (a folder it needs, the database); the reason follows.',
  SYNC_UNREACHABLE: 'Model sync could not reach the training host (network, TLS, HTTP error); it retries.',
  SYNC_POINTER_INVALID: "The channel pointer is not the expected JSON.",
  SYNC_MANIFEST_INVALID: 'The offered manifest is malformed or is not the version the pointer names.',
  SYNC_SIGNATURE_INVALID: 'The offered manifest is not signed, or not by a trusted key.',
  SYNC_VERSION_REFUSED: 'The offered version is not newer than the active one.',
  SYNC_INCOMPATIBLE: "The offered model does not fit this station (input larger than sync.max_input_pixels).",
  SYNC_DOWNLOAD_FAILED: 'A file of the offered bundle could not be downloaded, or its size or sha256 differs.',
  SYNC_LOAD_FAILED: 'The offered model does not load (ONNX Runtime, graph mismatch).',
  SYNC_ACTIVATE_FAILED: 'The offered model loaded but could not be made active (e.g. the repository could not be written).',
  SYNC_MODEL_UNFIT: "The offered bundle failed the fitness rule when it was trained (manifest fit: false); refused unless sync.allow_unfit.",
  SYNC_GOLDEN_MISMATCH: "The offered model's scores of its golden samples differ from the manifest's.",
  LABEL_INVALID: 'A label, label CSV line or inspection reference that does not parse or names nothing (one line naming it; nothing imported).',
  QUANTIZE_INVALID_INPUT: '`model quantize` was given a bundle it cannot quantise (already quantised, unknown operators, opset < 13) or no usable captures.',
  QUANTIZE_NOT_FUSED: 'ONNX Runtime did not fuse every quantised convolution into QLinearConv: the int8 model would not be faster.',
  QUANTIZE_DISAGREES: "The int8 model's verdicts or scores differ from the fp32 model's beyond the limits on held-out captures.",
  USAGE_INVALID: 'A command was given an unknown option, a missing or malformed argument, or a reference that names nothing (exit 2).',
  INTERNAL_ERROR: 'A bug in xray-qc, not a fault of the capture or the model; logged with its stack. The capture is retried once, then recorded with this code.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class XrayError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'XrayError';
    this.code = code;
  }
}

/** Maps anything thrown into a coded error; unknown errors keep their message under `fallback`. */
export function toXrayError(err: unknown, fallback: ErrorCode): XrayError {
  if (err instanceof XrayError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new XrayError(fallback, oneLine(message));
}

export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, 500);
}

/**
 * The kinds of row in the `events` table: a closed set, each documented in docs/database.md
 * (a test keeps the two in step).
 */
export const EVENT_KINDS = {
  start: 'The daemon started (version, pid, config file).',
  stop: 'The daemon stopped, with why and its last summary.',
  security: 'A permission finding at start (a world-readable key, a writable model folder).',
  model: 'A model loaded, activated, pruned, or none installed yet.',
  fallback: 'Consecutive inference failures: going back to the previous model.',
  sync: 'Model sync refused an offered version (with its code and step).',
  broker: 'The MQTT broker connected, or refused or dropped the connection.',
  capture: 'The capture folder came back.',
  shadow: 'A shadow candidate model was loaded, dropped, or could not be loaded.',
  drift: 'A drift episode began (captures clipped by the global bounds past `drift.max_clipped`) or ended.',
  error: 'An error row was recorded, the capture folder went missing, a switch or start failed.',
} as const;

export type EventKind = keyof typeof EVENT_KINDS;
