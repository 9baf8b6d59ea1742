import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

/**
 * The SQLite binding for this runtime. better-sqlite3 13 (Node-API) on Node ≥ 22. Node 24 aborts
 * in better-sqlite3 12's Statement destructor whenever a statement is collected at the wrong moment
 * (`node::RemoveEnvironmentCleanupHook`: `(env) != nullptr`; 12 wraps objects with the raw
 * `node::ObjectWrap`, whose cleanup hooks Node 24 changed), and 13 crashes on Node 20 (segfault on
 * first use), so Node 20 — end of life, still tested until the stations have moved — loads 12,
 * installed under the alias `better-sqlite3-node20`. Both are optional dependencies: npm skips 13
 * on Node 20 (its engines say >= 22) without a warning. Same API, same file format. D29. After
 * changing a station's Node.js major, run `npm ci` again.
 */
const require = createRequire(import.meta.url);

export const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

export const SQLITE_PACKAGE = NODE_MAJOR >= 22 ? 'better-sqlite3' : 'better-sqlite3-node20';

const Sqlite = require(SQLITE_PACKAGE) as typeof BetterSqlite3;

export default Sqlite;
export type SqliteDatabase = BetterSqlite3.Database;
