import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { XrayError } from '../errors.js';
import { parseManifest, type Manifest } from './manifest.js';

/** A verified model bundle: a directory with manifest.json, model.onnx and what the manifest lists. */
export interface Bundle {
  dir: string;
  manifest: Manifest;
  modelPath: string;
  /** sha256 of model.onnx, as listed (and verified). */
  modelSha256: string;
  /** sha256 of manifest.json: the bundle's identity (threshold, bounds, version … included). */
  manifestSha256: string;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export async function readManifest(dir: string): Promise<Manifest> {
  const path = join(dir, 'manifest.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new XrayError('MODEL_MANIFEST_INVALID', `${path}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new XrayError('MODEL_MANIFEST_INVALID', `${path}: not JSON (${(err as Error).message})`);
  }
  return parseManifest(json, path);
}

/** Loads a bundle and checks every listed file's size and sha256. */
export async function loadBundle(dir: string): Promise<Bundle> {
  const abs = resolve(dir);
  const manifest = await readManifest(abs);
  for (const [name, expected] of Object.entries(manifest.files)) {
    const path = join(abs, name);
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch {
      throw new XrayError('MODEL_FILE_MISMATCH', `files.${name}: missing from ${abs}`);
    }
    if (size !== expected.bytes) {
      throw new XrayError('MODEL_FILE_MISMATCH', `files.${name}: ${size} bytes, manifest says ${expected.bytes}`);
    }
    const digest = await sha256File(path);
    if (digest !== expected.sha256) {
      throw new XrayError('MODEL_FILE_MISMATCH', `files.${name}: sha256 ${digest}, manifest says ${expected.sha256}`);
    }
  }
  return { dir: abs, manifest, modelPath: join(abs, 'model.onnx'), modelSha256: manifest.files['model.onnx'].sha256, manifestSha256: await sha256File(join(abs, 'manifest.json')) };
}

/**
 * `path` is a bundle (has manifest.json) or a model repository: a directory of bundles with a file
 * `active` naming the active bundle's directory; without `active`, its only bundle.
 */
export async function resolveBundleDir(path: string): Promise<string> {
  const abs = resolve(path);
  if (await exists(join(abs, 'manifest.json'))) return abs;
  if (!(await exists(abs))) throw new XrayError('MODEL_NOT_FOUND', `${abs} does not exist`);
  const activeFile = join(abs, 'active');
  if (await exists(activeFile)) {
    const name = (await readFile(activeFile, 'utf8')).trim();
    if (!name || name.includes('/') || name.startsWith('.')) {
      throw new XrayError('MODEL_NOT_FOUND', `${activeFile} must name a bundle directory, found '${name}'`);
    }
    const dir = join(abs, name);
    if (!(await exists(join(dir, 'manifest.json')))) {
      throw new XrayError('MODEL_NOT_FOUND', `${activeFile} names '${name}', which is not a bundle`);
    }
    return dir;
  }
  const entries = await readdir(abs, { withFileTypes: true });
  const bundles: string[] = [];
  for (const e of entries) {
    if (e.isDirectory() && !e.name.startsWith('.') && (await exists(join(abs, e.name, 'manifest.json')))) bundles.push(e.name);
  }
  if (bundles.length === 1) return join(abs, bundles[0]);
  throw new XrayError('MODEL_NOT_FOUND', bundles.length === 0
    ? `${abs} holds no bundle (no manifest.json)`
    : `${abs} holds ${bundles.length} bundles and no 'active' file naming one`);
}
