import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * WAL checkpoints of shared (default) stores, run on one worker thread per process instead of on
 * the thread that commits (ARCHITECTURE § Storage, "Checkpoints off the writing thread").
 *
 * SQLite's automatic checkpoint runs inside the commit that crosses `wal_autocheckpoint`: it
 * copies the WAL into the main file and fsyncs both, and with `synchronous=NORMAL` those two
 * fsyncs are the only ones a commit ever waits for. On a disk where an fsync of a 4 MiB WAL takes
 * 5–30 ms, that is 15–40 µs of every small commit's wall time on average, more than the rest of
 * the commit (BENCHMARKS.md § Issue 12, Session 14 (puts)). A shared store turns SQLite's
 * automatic checkpoint off and asks this thread instead, which opens its own connection to the
 * file, runs a passive checkpoint (the same copy and the same fsyncs: nothing about durability
 * changes, the WAL is synced before the main file as before) and closes it again. WAL mode lets
 * the store keep committing meanwhile. An exclusive store cannot be checkpointed by another
 * connection and keeps SQLite's own.
 *
 * The thread is made at the first request of the process (a store whose WAL grew by about
 * `WAL_CHECKPOINT_BYTES`), serves every store of the process one request at a time, and is
 * unref'd: it never keeps the process alive. A request carries a one-word `SharedArrayBuffer`
 * the thread clears when it is done, so that a store closing can wait for a checkpoint of its
 * file still running — `Database.close()` without blocking (`settle()`, `Atomics.waitAsync`),
 * a store's own synchronous `close()` blocking, at most `CHECKPOINT_SETTLE_MS` — and after
 * `close()` no connection of the process is left on the file.
 */

/** The thread's code: CommonJS, given better-sqlite3's resolved path (it runs without our module resolution). */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
parentPort.on('message', ({ path, state, holdMs }) => {
  let db;
  try {
    db = new Database(path, { fileMustExist: true });
    // Never wait on a lock here: a busy file is checkpointed by the next request.
    db.pragma('busy_timeout = 0');
    db.pragma('synchronous = NORMAL');
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // A file gone, locked or full: nothing is lost (the WAL keeps every commit); the store asks
    // again after more WAL, and checkpoints itself past its bound.
  } finally {
    try { db?.close(); } catch {}
    // Tests only (holdCheckpointsForTesting): the request stays in flight this much longer.
    if (holdMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, holdMs);
    Atomics.store(state, 0, 0);
    Atomics.notify(state, 0);
  }
});
`;

/** In flight: the thread has the request and has not finished it. */
const BUSY = 1;

let worker: Worker | null = null;
/** Set when the thread could not be made or failed: stores then checkpoint themselves, as SQLite would. */
let unavailable = false;

function thread(): Worker {
  if (worker !== null) return worker;
  const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
  const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { sqlite } });
  w.unref();
  // A thread that failed (it cannot load better-sqlite3, or was terminated) is replaced at the
  // next request; stores waiting on it see their requests as done (below).
  const forget = (error?: unknown): void => {
    if (error !== undefined) unavailable = true;
    if (worker === w) worker = null;
    for (const state of pending) {
      Atomics.store(state, 0, 0);
      Atomics.notify(state, 0);
    }
    pending.clear();
  };
  w.on('error', forget);
  w.on('exit', () => forget());
  worker = w;
  return w;
}

/** Requests handed to the thread and not finished (for a thread that dies with them). */
const pending = new Set<Int32Array>();

/** {@link holdCheckpointsForTesting}. */
let holdMs = 0;

/**
 * Tests only: every checkpoint requested from now on stays in flight `ms` longer on the thread
 * (0: as normal), so that a test can close a store or a database while one is surely running.
 */
export function holdCheckpointsForTesting(ms: number): void {
  holdMs = ms;
}

/** Tests only: how many requested checkpoints are running or waiting on the thread now. */
export function checkpointsInFlight(): number {
  let n = 0;
  for (const state of pending) if (Atomics.load(state, 0) === BUSY) n++;
  return n;
}

/** `Atomics.waitAsync` (ES2024; Node has it since 16): not in this project's ES2023 lib. */
type WaitAsync = (array: Int32Array, index: number, value: number, timeoutMs: number) => { async: boolean; value: Promise<string> | string };

/**
 * One store's requests: at most one in flight. Made at the store's first request (an idle or
 * small store never makes one, nor the thread).
 */
export class CheckpointRequests {
  readonly #path: string;
  readonly #state = new Int32Array(new SharedArrayBuffer(4));

  constructor(path: string) {
    this.#path = path;
  }

  /** False once the checkpoint thread failed (it could not load better-sqlite3, say): a store then checkpoints itself. */
  static get available(): boolean {
    return !unavailable;
  }

  /** True while a checkpoint asked for is running or waiting on the thread. */
  get busy(): boolean {
    const busy = Atomics.load(this.#state, 0) === BUSY;
    if (!busy) pending.delete(this.#state);
    return busy;
  }

  /** Asks the thread for a passive checkpoint of the file; false if one is still in flight. */
  request(): boolean {
    if (unavailable || this.busy) return false;
    let w: Worker;
    try {
      w = thread();
    } catch {
      unavailable = true;
      return false;
    }
    Atomics.store(this.#state, 0, BUSY);
    pending.add(this.#state);
    try {
      w.postMessage({ path: this.#path, state: this.#state, holdMs });
    } catch {
      Atomics.store(this.#state, 0, 0);
      pending.delete(this.#state);
      return false;
    }
    return true;
  }

  /**
   * Waits (blocking, at most `timeoutMs`) until no checkpoint of this store is in flight: a
   * closing store leaves no connection of the process on its file.
   */
  settle(timeoutMs: number): void {
    if (Atomics.load(this.#state, 0) === BUSY) Atomics.wait(this.#state, 0, BUSY, timeoutMs);
    pending.delete(this.#state);
  }

  /**
   * As {@link settle}, without blocking: resolves once no checkpoint of this store is in flight,
   * or after `timeoutMs`. The thread's clearing of the word wakes it (`Atomics.notify`), as does
   * the thread's death (its requests count as done).
   */
  async settled(timeoutMs: number): Promise<void> {
    if (Atomics.load(this.#state, 0) === BUSY) {
      const waitAsync = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync;
      if (waitAsync === undefined) {
        this.settle(timeoutMs);
        return;
      }
      const wait = waitAsync(this.#state, 0, BUSY, timeoutMs);
      if (wait.async) {
        // A pending waitAsync does not keep the event loop alive (nor does the unref'd thread):
        // without this timer a script whose last step is `await db.close()` would exit here.
        const alive = setTimeout(() => {}, timeoutMs);
        try {
          await wait.value;
        } finally {
          clearTimeout(alive);
        }
      }
    }
    pending.delete(this.#state);
  }
}
