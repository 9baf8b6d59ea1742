import { existsSync } from 'node:fs';
import { XrayError } from '../errors.js';
import { openDatabaseReadOnly, type Db } from '../record/database.js';
import { loadConfig } from '../service/config.js';

/** What the audit, label and review commands share: the database they read, dates, CSV cells. */

export interface DbOptions { db?: string; config: string }

export function openDb(o: DbOptions): Db {
  const path = o.db ?? loadConfig(o.config).database.path;
  try {
    return openDatabaseReadOnly(path);
  } catch (err) {
    // SQLite's own message ("unable to open database file") does not say which file
    throw new XrayError('USAGE_INVALID', `${path}: ${existsSync(path) ? (err as Error).message : 'no such audit database'}`);
  }
}

export function iso(value: string): string {
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new XrayError('USAGE_INVALID', `not a date/time: ${value} (give an ISO 8601 date or time, e.g. 2026-12-07 or 2026-12-07T08:00:00Z)`);
  return new Date(t).toISOString();
}

export function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
