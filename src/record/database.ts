import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Sqlite, { type SqliteDatabase } from './sqlite.js';
import { MIGRATIONS } from './schema.js';

export type Db = SqliteDatabase;

/** Opens (creating if needed) the audit database in WAL mode and applies pending migrations. */
export function openDatabase(path: string): Db {
  mkdirSync(dirname(path), { recursive: true });
  const db = new Sqlite(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL'); // a verdict acknowledged to the line survives a power cut
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

/** Read-only access for audit queries, safe while the daemon writes. */
export function openDatabaseReadOnly(path: string): Db {
  const db = new Sqlite(path, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  return db;
}

export function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`database schema version ${current} is newer than this xray-qc knows (${MIGRATIONS.length})`);
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
