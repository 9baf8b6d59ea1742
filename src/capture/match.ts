import { relative, sep } from 'node:path';
import picomatch from 'picomatch';

/**
 * Which files under the capture folder are captures: a path relative to the folder matches one of
 * `patterns` (case-insensitive) and neither it nor any folder above it matches `ignore`.
 */
export function captureMatcher(root: string, patterns: string[], ignore: string[]): (absPath: string) => boolean {
  const include = picomatch(patterns, { nocase: true, dot: true });
  const exclude = picomatch(ignore, { nocase: true, dot: true });
  return (absPath: string): boolean => {
    const rel = relative(root, absPath).split(sep).join('/');
    if (!rel || rel.startsWith('../')) return false;
    if (!include(rel)) return false;
    const parts = rel.split('/');
    for (let i = 1; i <= parts.length; i++) if (exclude(parts.slice(0, i).join('/'))) return false;
    return true;
  };
}

/** True when a folder (relative path) is itself ignored, so the watcher need not descend. */
export function folderIgnored(root: string, ignore: string[]): (absPath: string) => boolean {
  const exclude = picomatch(ignore, { nocase: true, dot: true });
  return (absPath: string): boolean => {
    const rel = relative(root, absPath).split(sep).join('/');
    return !!rel && !rel.startsWith('../') && exclude(rel);
  };
}
