import { createTransport } from '@rhizome/core';
import { openStore } from '@rhizome/store-sqlite';
import type { Platform } from './types.js';

/**
 * Node: SQLite files through better-sqlite3 by default, `setImmediate` for background work, and
 * core's `createTransport` (relay and DHT packages loaded when first used).
 */
export const nodePlatform: Platform = {
  name: 'node',
  openStore: (path, options) => openStore(path, options),
  macrotask: (fn) => {
    const handle = setImmediate(fn);
    return () => clearImmediate(handle);
  },
  createTransport,
};
