// The page side of the store-choice benchmark: the database in the page, as apps run it, on
// IndexedDB (the shipped store) or on SQLite in OPFS behind a worker (OpfsWorkerStore).
import { IDB_NAME_PREFIX, openIndexedDbStore } from '@rhizome/store-browser';
import { OpfsWorkerStore } from './opfs-worker-store.js';
import { runStoreTask, type StoreKind, type StoreTask, type StoreTaskResult } from './worker-core.js';

const kinds: Record<string, StoreKind> = {
  idb: {
    start: () => Promise.resolve(),
    open: (name) => openIndexedDbStore(name),
    stop: () => Promise.resolve(),
    drop: (name) =>
      new Promise<void>((resolve, reject) => {
        const request = indexedDB.deleteDatabase(IDB_NAME_PREFIX + name);
        request.onsuccess = () => resolve();
        request.onerror = () => reject(request.error ?? new Error('deleteDatabase failed'));
      }),
  },
  opfs: {
    start: () => Promise.resolve(),
    open: (name) => OpfsWorkerStore.open('/worker-opfs-host.js?synchronous=OFF', name),
    stop: () => Promise.resolve(),
    drop: () => Promise.reject(new Error('drop OPFS files from a worker-opfs.js worker')),
  },
};

/** What the bench calls with page.evaluate. */
export async function runInPage(kind: string, task: StoreTask): Promise<StoreTaskResult> {
  const t0 = performance.now();
  try {
    return await runStoreTask(kinds[kind]!, task, t0);
  } catch (error) {
    return { ms: 0, engineMs: 0, storeMs: 0, docMs: 0, size: 0, logUpdates: 0, error: error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ''}` : String(error) };
  }
}

(globalThis as unknown as { storeBench: { run: typeof runInPage } }).storeBench = { run: runInPage };
