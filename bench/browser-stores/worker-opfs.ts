// Store-choice benchmark worker, SQLite in OPFS: @sqlite.org/sqlite-wasm with the "opfs-sahpool"
// VFS (needs a dedicated worker, and no COOP/COEP headers), through the bench-only OpfsSqliteStore.
import sqlite3InitModule, { type SAHPoolUtil } from '@sqlite.org/sqlite-wasm';
import { OpfsSqliteStore, type OpfsJournal, type OpfsSynchronous } from './opfs-sqlite-store.js';
import { serveStoreTask } from './worker-core.js';

const params = new URL(self.location.href).searchParams;
const synchronous = (params.get('synchronous') ?? 'FULL') as OpfsSynchronous;
const journal = (params.get('journal') ?? 'TRUNCATE') as OpfsJournal;
let pool: SAHPoolUtil | undefined;

serveStoreTask({
  async start() {
    const sqlite3 = await sqlite3InitModule();
    pool = await sqlite3.installOpfsSAHPoolVfs({ name: 'rhizome-bench', initialCapacity: 10 });
  },
  open: (name) => Promise.resolve(new OpfsSqliteStore(pool!, `/${name}.sqlite3`, synchronous, journal)),
  // The pool holds a SyncAccessHandle on each of its files until paused: release them for the next worker.
  stop: () => Promise.resolve(void pool?.pauseVfs()),
  drop(name) {
    // The rollback journal (TRUNCATE mode keeps it) or the WAL takes a slot of the pool too.
    for (const file of [`/${name}.sqlite3`, `/${name}.sqlite3-journal`, `/${name}.sqlite3-wal`]) pool!.unlink(file);
    return Promise.resolve();
  },
});
