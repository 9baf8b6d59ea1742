import { copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { sha256File } from '../model/bundle.js';
import { parseManifest } from '../model/manifest.js';
import type { Scored } from '../pipeline/messages.js';

/** Scores one capture file with the model under test. */
export type ScoreFile = (file: string) => Promise<Scored>;

/**
 * Golden samples: captures scored on the training host and stored in the bundle with their
 * p_abnormal, so a station can prove it computes the same before it trusts a new model.
 */

export interface GoldenExpectation {
  tolerance: number;
  files: Record<string, number>;
}

export async function addGolden(bundleDir: string, score: ScoreFile, tiffs: string[], tolerance = 0.001): Promise<GoldenExpectation> {
  const dir = join(bundleDir, 'golden');
  await mkdir(dir, { recursive: true });
  const expected: GoldenExpectation = { tolerance, files: {} };
  for (const tiff of tiffs) {
    const r = await score(tiff);
    if (r.verdict === 'error') throw new Error(`${tiff}: ${r.error.code}: ${r.error.message}`);
    const name = basename(tiff);
    if (name in expected.files) throw new Error(`two golden files named ${name}`);
    await copyFile(tiff, join(dir, name));
    expected.files[name] = r.p_abnormal;
  }
  await writeFile(join(dir, 'expected.json'), `${JSON.stringify(expected, null, 2)}\n`);
  // List every golden file in the manifest (which the signature will cover).
  const manifestPath = join(bundleDir, 'manifest.json');
  const manifest = parseManifest(JSON.parse(await readFile(manifestPath, 'utf8')));
  for (const name of [...Object.keys(expected.files), 'expected.json']) {
    const path = join(dir, name);
    manifest.files[`golden/${name}`] = { sha256: await sha256File(path), bytes: (await stat(path)).size };
  }
  await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  return expected;
}

export async function readGolden(bundleDir: string): Promise<GoldenExpectation | null> {
  try {
    return JSON.parse(await readFile(join(bundleDir, 'golden', 'expected.json'), 'utf8')) as GoldenExpectation;
  } catch {
    return null;
  }
}

/** Scores the golden files with `score`; returns the first mismatch, or null when all agree. */
export async function checkGolden(bundleDir: string, score: ScoreFile): Promise<string | null> {
  const golden = await readGolden(bundleDir);
  if (!golden) return null;
  for (const [name, want] of Object.entries(golden.files)) {
    const r = await score(join(bundleDir, 'golden', name));
    if (r.verdict === 'error') return `golden/${name}: ${r.error.code}: ${r.error.message}`;
    if (!Number.isFinite(r.p_abnormal)) return `golden/${name}: p_abnormal is not finite`;
    const diff = Math.abs(r.p_abnormal - want);
    if (!(diff <= golden.tolerance)) return `golden/${name}: p_abnormal ${r.p_abnormal} differs from ${want} by ${diff} (tolerance ${golden.tolerance})`;
  }
  return null;
}
