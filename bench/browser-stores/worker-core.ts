// The tasks of the store-choice benchmark (bench/browser-stores.ts). In a worker, one worker runs
// one task on one store kind and answers with its figures: a fresh worker per measurement, so a
// reopen pays what a reloaded page pays (the worker's start, the store's start-up, the read and
// the rebuild of the document). Entries: worker-idb.ts, worker-opfs.ts (the database in a
// worker) and page.ts (the database in the page, as apps run it).
import type { DocStore } from '@rhizome/core';
import { openDatabase } from '@rhizome/sync';

/** What the page asks one worker to do. */
export type StoreTask =
  /** `n` puts, `perTick` of them per macrotask (each put is its own Yjs transaction), then flush. */
  | { kind: 'puts'; name: string; n: number; perTick: number }
  /** Writes a `nodes`-node database: in one Yjs transaction (`perTick` 0) or `perTick` puts a macrotask. */
  | { kind: 'build'; name: string; id: string; nodes: number; perTick: number }
  /** Opens database `id` from store `name` and checks it holds `nodes` nodes. */
  | { kind: 'reopen'; name: string; id: string; nodes: number }
  /** Removes store `name`. */
  | { kind: 'drop'; name: string };

/** A worker's answer. */
export interface StoreTaskResult {
  /** Time of the measured part: the puts until flush() resolved, or the reopen until the database was open. */
  ms: number;
  /** Of a reopen: ms from the worker's first line to the store engine ready (wasm compiled, VFS installed). */
  engineMs: number;
  /** Of a reopen: ms of opening the store (for IndexedDB: reading every row into memory). */
  storeMs: number;
  /** Of a reopen: ms of `openDatabase` on the open store (load the rows, rebuild the Y.Doc). */
  docMs: number;
  /** Nodes in the database at the end. */
  size: number;
  /** Rows the store holds for the document afterwards (updates in the log, as the store counts them). */
  logUpdates: number;
  error?: string;
}

/** How a worker entry opens its store. */
export interface StoreKind {
  /** Starts the engine (loads wasm, installs a VFS); done once per worker. */
  start(): Promise<void>;
  open(name: string): Promise<DocStore>;
  /** Releases what start() took (OPFS access handles), so the next worker can take them. */
  stop(): Promise<void>;
  drop(name: string): Promise<void>;
}

const moduleStart = performance.now();

/** A macrotask that is not clamped like nested setTimeout (4 ms after five levels). */
function macrotask(): Promise<void> {
  const channel = new MessageChannel();
  return new Promise((resolve) => {
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(0);
  });
}

/**
 * Runs `task` on a store of `kind`; a reopen's `ms` counts from `t0` (the worker's first line, or
 * the page's call) until the database is open.
 */
export async function runStoreTask(kind: StoreKind, task: StoreTask, t0: number): Promise<StoreTaskResult> {
  const result: StoreTaskResult = { ms: 0, engineMs: 0, storeMs: 0, docMs: 0, size: 0, logUpdates: 0 };
  await kind.start();
  result.engineMs = performance.now() - t0;
  try {
    if (task.kind === 'drop') {
      await kind.drop(task.name);
      return result;
    }
    const s0 = performance.now();
    const store = await kind.open(task.name);
    const s1 = performance.now();
    try {
      const id = task.kind === 'puts' ? 'bench' : task.id;
      // Compaction off while building: the reopen reads back every row the puts wrote.
      const db = await openDatabase({ id, store, persistence: { compactAfterUpdates: Infinity, compactAfterBytes: Infinity } });
      const s2 = performance.now();
      result.storeMs = s1 - s0;
      result.docMs = s2 - s1;
      // Like the page (and any app that renders): an event subscriber, so node events are computed.
      const events = db.events.subscribe({ capacity: 1 << 16 });
      try {
        if (task.kind === 'puts') {
          const p0 = performance.now();
          for (let i = 0; i < task.n; i++) {
            db.put(`p${i}`, { title: `node ${i}`, n: i, done: false });
            if ((i + 1) % task.perTick === 0) await macrotask();
          }
          await db.flush();
          result.ms = performance.now() - p0;
        } else if (task.kind === 'build') {
          if (task.perTick === 0) {
            db.doc.transact(() => {
              for (let i = 0; i < task.nodes; i++) db.put(`n${i}`, { title: `node ${i}`, n: i, done: i % 2 === 0 });
            });
          } else {
            for (let i = 0; i < task.nodes; i++) {
              db.put(`n${i}`, { title: `node ${i}`, n: i, done: i % 2 === 0 });
              if ((i + 1) % task.perTick === 0) await macrotask();
            }
          }
          await db.flush();
        } else {
          result.ms = s2 - t0;
        }
        result.size = db.size;
        result.logUpdates = store.stats(id).updates;
      } finally {
        events.unsubscribe();
        await db.close();
      }
    } finally {
      store.close();
      await (store as { closed?: Promise<void> }).closed;
    }
    return result;
  } finally {
    await kind.stop();
  }
}

/** Answers the first message of the page with the figures of that task. */
export function serveStoreTask(kind: StoreKind): void {
  const scope = globalThis as unknown as { onmessage: ((e: MessageEvent<StoreTask>) => void) | null; postMessage(m: StoreTaskResult): void };
  scope.onmessage = (event) => {
    scope.onmessage = null;
    runStoreTask(kind, event.data, moduleStart).then(
      (result) => scope.postMessage(result),
      (error: unknown) =>
        scope.postMessage({ ms: 0, engineMs: 0, storeMs: 0, docMs: 0, size: 0, logUpdates: 0, error: error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ''}` : String(error) }),
    );
  };
}
