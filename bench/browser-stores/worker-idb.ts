// Store-choice benchmark worker, IndexedDB: the shipped store (@rhizome/store-browser), defaults.
import { IDB_NAME_PREFIX, openIndexedDbStore } from '@rhizome/store-browser';
import { serveStoreTask } from './worker-core.js';

serveStoreTask({
  start: () => Promise.resolve(),
  open: (name) => openIndexedDbStore(name),
  stop: () => Promise.resolve(),
  drop: (name) =>
    new Promise<void>((resolve, reject) => {
      const request = indexedDB.deleteDatabase(IDB_NAME_PREFIX + name);
      request.onsuccess = () => resolve();
      request.onerror = () => reject(request.error ?? new Error('deleteDatabase failed'));
    }),
});
