import { closeSync, existsSync, fsyncSync, openSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readManifest } from './bundle.js';
import type { Manifest } from './manifest.js';

/**
 * A model repository: bundle folders plus `active`, a one-line file naming the active bundle's
 * folder. Bundles arrive complete (renamed in from `.staging/`), `active` is replaced atomically
 * (write, fsync, rename, fsync the folder), so a crash leaves the old or the new, never half.
 */

export const STAGING = '.staging';

export interface RepoEntry {
  dir: string;
  folder: string;
  manifest: Manifest | null;
  error?: string;
}

export function bundleFolderName(m: { name: string; version: number }): string {
  return `${m.name}-v${m.version}`;
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  const fd = openSync(tmp, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  await rename(tmp, path);
  fsyncDir(join(path, '..'));
}

export async function readActive(repo: string): Promise<string | null> {
  try {
    return (await readFile(join(repo, 'active'), 'utf8')).trim() || null;
  } catch {
    return null;
  }
}

export async function setActive(repo: string, folder: string): Promise<void> {
  await writeFileAtomic(join(repo, 'active'), `${folder}\n`);
}

/** The bundle folder that runs as a shadow candidate (`xray-qc models shadow`), or null. */
export async function readShadow(repo: string): Promise<string | null> {
  try {
    return (await readFile(join(repo, 'shadow'), 'utf8')).trim() || null;
  } catch {
    return null;
  }
}

export async function setShadow(repo: string, folder: string | null): Promise<void> {
  if (folder === null) await rm(join(repo, 'shadow'), { force: true });
  else await writeFileAtomic(join(repo, 'shadow'), `${folder}\n`);
}

export async function listRepository(repo: string): Promise<RepoEntry[]> {
  let names: string[];
  try {
    names = (await readdir(repo, { withFileTypes: true })).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
  } catch {
    return [];
  }
  const out: RepoEntry[] = [];
  for (const folder of names.sort()) {
    const dir = join(repo, folder);
    try {
      await stat(join(dir, 'manifest.json'));
    } catch {
      continue;
    }
    try {
      out.push({ dir, folder, manifest: await readManifest(dir) });
    } catch (err) {
      out.push({ dir, folder, manifest: null, error: (err as Error).message });
    }
  }
  return out;
}

/**
 * True when `modelDir` holds no model at all: not a bundle, and (missing, or) a repository with no
 * bundle folder. A station with sync then starts and waits for its first model; without sync it
 * cannot run. One rule for `run` and `run --check`.
 */
export async function holdsNoModel(modelDir: string): Promise<boolean> {
  return !existsSync(join(modelDir, 'manifest.json')) && (await listRepository(modelDir)).length === 0;
}

/** Removes what an interrupted download or activation left in `.staging/`. */
export async function cleanStaging(repo: string): Promise<void> {
  await rm(join(repo, STAGING), { recursive: true, force: true });
  await mkdir(join(repo, STAGING), { recursive: true });
}

/**
 * Keeps the newest `keep` versions of each name, and always the active bundle and the one it
 * replaced (`previous`).
 */
export async function pruneRepository(repo: string, keep: number, protect: string[]): Promise<string[]> {
  const entries = (await listRepository(repo)).filter((e) => e.manifest);
  const byName = new Map<string, RepoEntry[]>();
  for (const e of entries) byName.set(e.manifest!.name, [...(byName.get(e.manifest!.name) ?? []), e]);
  const removed: string[] = [];
  for (const list of byName.values()) {
    list.sort((a, b) => b.manifest!.version - a.manifest!.version);
    for (const e of list.slice(keep)) {
      if (protect.includes(e.folder)) continue;
      await rm(e.dir, { recursive: true, force: true });
      removed.push(e.folder);
    }
  }
  return removed;
}
