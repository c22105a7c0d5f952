/**
 * @rhizome/store-sqlite: persistence of Yjs documents (update log + snapshot) in an SQLite file
 * through better-sqlite3, behind the `DocStore` interface of @rhizome/core.
 * @packageDocumentation
 */
import { MemoryStore, type DocStore } from '@rhizome/core';
import { openSqliteStore, type SqliteStoreOptions } from './sqlite-store.js';

export { SqliteStore, openSqliteStore } from './sqlite-store.js';
export type { SqliteStoreOptions } from './sqlite-store.js';
export { SCHEMA_VERSION, APPLICATION_ID, MIGRATIONS } from './schema.js';
export type { Migration } from './schema.js';

/**
 * The store for a database `path`: a {@link MemoryStore} for `undefined` or `':memory:'`,
 * otherwise the SQLite file at `path` (created if missing; see {@link openSqliteStore} for the
 * errors an unusable file gives).
 *
 * @example
 * ```ts
 * const store = openStore(options.path); // MemoryStore when no path is given
 * ```
 */
export function openStore(path?: string, options?: SqliteStoreOptions): DocStore {
  if (path === undefined || path === ':memory:') return new MemoryStore();
  return openSqliteStore(path, options);
}
