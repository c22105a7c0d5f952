/**
 * @rhizome/store-browser: persistence of Yjs documents (update log + snapshot) in IndexedDB,
 * behind the `DocStore` interface of @rhizome/core. The default store of `@rhizome/sync` in
 * browsers; nothing in it is Node-only.
 * @packageDocumentation
 */
import { MemoryStore, type DocStore } from '@rhizome/core';
import { openIndexedDbStore, type IndexedDbStoreOptions } from './idb-store.js';

export { IndexedDbStore, openIndexedDbStore, IDB_NAME_PREFIX, IDB_FORMAT_APP, IDB_FORMAT_VERSION } from './idb-store.js';
export type { IndexedDbStoreOptions, IdbDurability } from './idb-store.js';

/**
 * The browser store for a database `path`: a {@link MemoryStore} for `undefined` or
 * `':memory:'`, otherwise the IndexedDB store named `path` (created if missing; see
 * {@link openIndexedDbStore} for the errors an unusable one gives).
 *
 * @example
 * ```ts
 * const store = await openBrowserStore('notes'); // IndexedDB database 'rhizome:notes'
 * ```
 */
export async function openBrowserStore(path?: string, options?: IndexedDbStoreOptions): Promise<DocStore> {
  if (path === undefined || path === ':memory:') return new MemoryStore();
  return openIndexedDbStore(path, options);
}
