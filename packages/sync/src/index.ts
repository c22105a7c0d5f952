/**
 * @rhizome/sync: the Rhizome database. A Yjs document of JSON nodes, persisted (SQLite in Node,
 * IndexedDB in browsers: see `browser.ts`), reconciled with y-protocols sync over any
 * Transport, sealed end to end. This is the Node entry.
 * @packageDocumentation
 */
import { openDatabaseOn, type Database, type DatabaseOptions } from './database.js';
import { nodePlatform } from './platform/node.js';
import { setFastPathWarning } from './yjs-guard.js';

export * from './exports.js';

// A fast path through Yjs internals that declines on the loaded yjs says so once, as a Node
// warning (yjs-guard.ts): printed on stderr unless the app handles 'warning' or runs --no-warnings.
setFastPathWarning((error) => process.emitWarning(error));
export { nodePlatform } from './platform/node.js';

/**
 * Opens (or creates) a database: loads its state from `path` (an SQLite file; absent or
 * `':memory:'` keeps it in memory) or from the `store` given, joins its topic on the transport,
 * and syncs with every peer found there. Options are validated up front (`ERR_INVALID_CONFIG`
 * naming the field). Network trouble never fails the open: it is reported on `db.events`.
 *
 * @example
 * ```ts
 * import { openDatabase } from '@rhizome/sync';
 * import { generateDatabaseId } from '@rhizome/core';
 *
 * const db = await openDatabase({ id: generateDatabaseId(), path: 'notes.db' });
 * db.put('n1', { title: 'Hello', tags: ['a'] });
 * db.get('n1'); // { tags: ['a'], title: 'Hello' }
 * await db.close();
 * ```
 */
export function openDatabase(options: DatabaseOptions): Promise<Database> {
  return openDatabaseOn(nodePlatform, options);
}
