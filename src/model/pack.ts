import { copyFile, mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { XrayError } from '../errors.js';
import type { Conversion } from '../convert/conversion.js';
import { parseManifest, type Manifest } from './manifest.js';
import { sha256File } from './bundle.js';

export interface PackOptions {
  onnx: string;
  out: string;
  name: string;
  version: number;
  conversion: Conversion;
  bounds: { min: number; max: number } | null;
  threshold: number;
  reviewBand: [number, number] | null;
  inputName: string;
  outputName: string;
  outputKind: 'softmax' | 'logits';
  abnormalIndex: number;
  /** The graph's heat-map output, if it has one (manifest outputs.heatmap). */
  heatmapOutput?: string;
  height: number;
  width: number;
  mean: [number, number, number];
  std: [number, number, number];
  untrained?: boolean;
  synthetic?: boolean;
  /** The fitness rule's verdict (manifest `fit`); undefined writes none. */
  fit?: boolean;
  description?: string;
  metrics?: Record<string, unknown>;
  createdAt?: string;
  /** Other files copied in beside model.onnx under their base names, each listed with its sha256. */
  extraFiles?: string[];
}

/**
 * Writes a bundle: model.onnx copied in, its sha256 and size listed, manifest.json validated
 * against the schema. The manifest is written last (via a rename), so a half-written bundle never
 * has one. Checking the graph against the manifest is the caller's (it needs ONNX Runtime).
 */
export async function packBundle(o: PackOptions): Promise<{ dir: string; manifest: Manifest }> {
  const dir = resolve(o.out);
  await mkdir(dir, { recursive: true });
  const modelPath = join(dir, 'model.onnx');
  if (resolve(o.onnx) !== modelPath) await copyFile(o.onnx, modelPath);
  const files: Record<string, { sha256: string; bytes: number }> = {};
  for (const path of [modelPath, ...(o.extraFiles ?? [])]) {
    const name = basename(path);
    if (name in files || name === 'manifest.json' || name === 'manifest.sig') {
      throw new XrayError('PACK_INVALID_ARGUMENT', `${path}: a bundle already has a file named ${name}`);
    }
    const target = join(dir, name);
    if (resolve(path) !== target) {
      await copyFile(path, target).catch((err: NodeJS.ErrnoException) => {
        throw new XrayError('PACK_INVALID_ARGUMENT', `--file ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
      });
    }
    files[name] = { sha256: await sha256File(target), bytes: (await stat(target)).size };
  }
  const manifest = parseManifest({
    schema: 1,
    name: o.name,
    version: o.version,
    created_at: o.createdAt ?? new Date().toISOString(),
    ...(o.description ? { description: o.description } : {}),
    ...(o.untrained ? { untrained: true } : {}),
    ...(o.synthetic ? { synthetic: true } : {}),
    ...(o.fit !== undefined ? { fit: o.fit } : {}),
    files,
    input: { name: o.inputName, height: o.height, width: o.width },
    output: { name: o.outputName, kind: o.outputKind, abnormal_index: o.abnormalIndex },
    ...(o.heatmapOutput ? { outputs: { heatmap: o.heatmapOutput } } : {}),
    preprocess: { conversion: o.conversion, bounds: o.bounds, mean: o.mean, std: o.std },
    decision: { threshold: o.threshold, review_band: o.reviewBand },
    metrics: o.metrics ?? {},
  }, `${dir}/manifest.json`);
  const tmp = join(dir, `.manifest.json.${process.pid}.tmp`);
  await writeFile(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
  await rename(tmp, join(dir, 'manifest.json'));
  return { dir, manifest };
}

export const PACK_DEFAULTS = {
  conversion: 'global' as Conversion,
  threshold: 0.5,
  inputName: 'input',
  outputName: 'probs',
  outputKind: 'softmax' as const,
  abnormalIndex: 1,
  height: 2000,
  width: 1000,
  mean: [0.485, 0.456, 0.406] as [number, number, number],
  std: [0.229, 0.224, 0.225] as [number, number, number],
};
