import type { DocStore, Transport, TransportConfig } from '@rhizome/core';

/** Runs `fn` on a later macrotask (after pending I/O callbacks); returns a function that cancels it. */
export type Macrotask = (fn: () => void) => () => void;

/**
 * The edges of the host the sync engine runs on, injected rather than imported: the engine
 * itself (database, sessions, persistence) imports nothing Node-only or browser-only, and each
 * entry point of `@rhizome/sync` binds it to one platform (`node.ts` for Node, `browser.ts` for
 * pages and workers). Apps never see it unless they build a platform of their own.
 */
export interface Platform {
  /** Name, for messages: `'node'`, `'browser'`. */
  readonly name: string;
  /** The default store of a database when the app passes none: by `path` (undefined or `':memory:'`: memory). */
  openStore(path: string | undefined, options?: { readOnly?: boolean; exclusive?: boolean }): DocStore | Promise<DocStore>;
  /** The scheduler of background work (joining the topic, automatic compaction). */
  macrotask: Macrotask;
  /** Builds the transport of a configuration (`openDatabase({ transport: { mode, ... } })`). */
  createTransport(config: Partial<TransportConfig>): Transport;
}
