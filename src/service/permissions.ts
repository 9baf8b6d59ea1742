import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Config } from './config.js';

/**
 * Start-up check of what others could tamper with or read: a model folder or database folder
 * that any user can write (a swapped model decides verdicts; a rewritten database hides them), a
 * configuration file anyone can write, an audit database anyone can read. Returns one line per
 * finding; the daemon logs each and records it in `events`, and runs on (the plant decides).
 */
export function permissionFindings(c: Config): string[] {
  const found: string[] = [];
  const mode = (path: string): number | null => {
    try {
      return statSync(path).mode & 0o777;
    } catch {
      return null;
    }
  };
  const check = (path: string, what: string, bits: number, problem: string): void => {
    const m = mode(path);
    if (m !== null && (m & bits) !== 0) found.push(`${what} ${path} is ${problem} (mode ${m.toString(8).padStart(3, '0')})`);
  };
  check(c.model.dir, 'model folder', 0o002, 'writable by every user');
  check(dirname(c.database.path), 'database folder', 0o002, 'writable by every user');
  check(c.database.path, 'audit database', 0o006, 'readable or writable by every user');
  check(c.source, 'configuration file', 0o002, 'writable by every user');
  return found;
}
