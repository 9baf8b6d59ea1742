/**
 * The one table of error codes. Every code is stable (users grep logs and SQL for them) and is
 * documented in docs/scoring.md; a test keeps the two in step.
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
  MODEL_LOAD_FAILED: 'ONNX Runtime could not load the model with any configured provider.',
  INFER_FAILED: 'ONNX Runtime failed while running the model.',
  INFER_NON_FINITE: 'The model returned NaN or infinite values.',
  INFER_WORKER_EXITED: 'The inference worker thread stopped unexpectedly.',
  PREPARE_WORKER_EXITED: 'The preparation worker (decode + preprocess) stopped while handling this capture; it is restarted.',
  PACK_INVALID_ARGUMENT: 'A `model pack` option is missing or malformed.',
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
