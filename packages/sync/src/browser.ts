/**
 * @rhizome/sync in browsers (pages and workers): the same database as in Node, with IndexedDB
 * as its default store (`path` names it) and the relay client bundled in. Bundlers pick this
 * entry through the `browser` condition of the package's exports; nothing reachable from it
 * imports a Node built-in (a test bundles it and checks).
 * @packageDocumentation
 */
import { openDatabaseOn, type Database, type DatabaseOptions } from './database.js';
import { browserPlatform } from './platform/browser.js';

export * from './exports.js';
export { browserPlatform, messageChannelMacrotask } from './platform/browser.js';

/**
 * Opens (or creates) a database in a page: loads its state from the IndexedDB store named
 * `path` (absent or `':memory:'` keeps it in memory) or from the `store` given, joins its topic
 * on the transport, and syncs with every peer found there. Writes reach IndexedDB behind the
 * API; `await db.flush()` resolves once they are on disk.
 *
 * @example
 * ```ts
 * import { openDatabase } from '@rhizome/sync';
 *
 * const db = await openDatabase({ id, path: 'todos', transport: { mode: 'relay', relayUrl: 'wss://relay.example.com' } });
 * db.put('t1', { title: 'Buy milk', done: false });
 * await db.flush(); // on disk
 * ```
 */
export function openDatabase(options: DatabaseOptions): Promise<Database> {
  return openDatabaseOn(browserPlatform, options);
}
