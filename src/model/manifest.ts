import { z } from 'zod';
import { CONVERSIONS } from '../convert/conversion.js';
import { XrayError } from '../errors.js';

/**
 * manifest.json, schema 1: what a model bundle is and how its input must be prepared.
 * Strict (unknown keys are errors) so that a typo never silently falls back to a default.
 */

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');
const triple = z.tuple([z.number(), z.number(), z.number()]);

export const ManifestSchema = z.strictObject({
  schema: z.literal(1),
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'letters, digits, . _ - (max 100)'),
  version: z.number().int().positive(),
  created_at: z.iso.datetime({ offset: true }),
  description: z.string().optional(),
  /** true for the generated demo model: its scores mean nothing. */
  untrained: z.boolean().optional(),
  /** true for a model trained on synthetic captures only (xray-qc synth): a demonstration. */
  synthetic: z.boolean().optional(),
  /**
   * The fitness rule's verdict (docs/training.md): false for a model `xray-qc train --allow-unfit`
   * wrote although it failed the rule; stations refuse it unless forced. Absent: not judged
   * (bundles from before the rule, the demo model, `model pack` without --fit).
   */
  fit: z.boolean().optional(),
  files: z.record(
    z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/, 'a relative path inside the bundle').refine((p) => !p.split('/').includes('..'), 'must not contain ..'),
    z.strictObject({ sha256, bytes: z.number().int().nonnegative() }),
  ).refine((files) => 'model.onnx' in files, 'must list model.onnx'),
  input: z.strictObject({
    name: z.string().min(1).default('input'),
    height: z.number().int().positive().max(16384).default(2000),
    width: z.number().int().positive().max(16384).default(1000),
  }),
  output: z.strictObject({
    name: z.string().min(1).default('probs'),
    kind: z.enum(['softmax', 'logits']).default('softmax'),
    abnormal_index: z.number().int().nonnegative().default(1),
  }),
  /** Further graph outputs the station reads where present; bundles without them keep working. */
  outputs: z.strictObject({
    /** A Grad-CAM heat map (1×h×w over the last block's grid) of the abnormal-minus-normal logit (docs/review.md). */
    heatmap: z.string().min(1).optional(),
  }).optional(),
  preprocess: z.strictObject({
    conversion: z.enum(CONVERSIONS),
    bounds: z.strictObject({ min: z.number().int().min(0).max(65535), max: z.number().int().min(0).max(65535) })
      .refine((b) => b.max > b.min, 'max must be greater than min').nullable().default(null),
    mean: triple.default([0.485, 0.456, 0.406]),
    std: triple.refine((s) => s.every((v) => v > 0), 'every std must be > 0').default([0.229, 0.224, 0.225]),
  }).refine((p) => p.bounds !== null || p.conversion === 'naive' || p.conversion === 'local', {
    message: 'bounds are required for the global and mixed conversions', path: ['bounds'],
  }),
  decision: z.strictObject({
    threshold: z.number().min(0).max(1).default(0.5),
    review_band: z.tuple([z.number().min(0).max(1), z.number().min(0).max(1)])
      .refine(([lo, hi]) => lo < hi, 'lo must be below hi').nullable().default(null),
  }),
  metrics: z.record(z.string(), z.unknown()).default({}),
});

export type Manifest = z.infer<typeof ManifestSchema>;

/** `path: message` lines for every schema problem. */
export function issueLines(error: z.ZodError, prefix = ''): string[] {
  return error.issues.map((issue) => `${[prefix, ...issue.path.map(String)].filter(Boolean).join('.') || '(root)'}: ${issue.message}`);
}

export function formatIssues(error: z.ZodError, prefix = ''): string {
  return issueLines(error, prefix).join('; ');
}

export function parseManifest(json: unknown, source = 'manifest.json'): Manifest {
  const result = ManifestSchema.safeParse(json);
  if (!result.success) throw new XrayError('MODEL_MANIFEST_INVALID', `${source}: ${formatIssues(result.error)}`);
  return result.data;
}
