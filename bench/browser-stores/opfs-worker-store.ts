// What a page would ship if Rhizome's browser store were SQLite in OPFS: the sahpool VFS exists
// only in a dedicated worker and `DocStore` is synchronous, so the page keeps a write-behind
// mirror (as IndexedDbStore does) and a worker (worker-opfs-host.ts) commits the queued changes to
// SQLite. Bench-only (bench/browser-stores.ts): one handle per database, no format checks.
import type { DocStore, StoredDoc, StoreStats } from '@rhizome/core';


/** A change queued for the worker. */
export type HostOp = { op: 'append'; docId: string; updates: Uint8Array[] } | { op: 'compact'; docId: string; snapshot: Uint8Array; throughSeq: number };

/** What the page asks of the worker. */
export type HostBody = { kind: 'open'; name: string } | { kind: 'write'; ops: HostOp[] } | { kind: 'sync' } | { kind: 'close' };

/** Page → worker. */
export type HostRequest = HostBody & { id: number };

/** One document as the worker read it: its updates packed into one buffer (one transfer, not one per row). */
export interface PackedDoc {
  docId: string;
  snapshot: Uint8Array | null;
  /** (u32 little-endian length, bytes) per update, oldest first. */
  updates: Uint8Array;
  lastSeq: number;
}

/** Worker → page. */
export interface HostReply {
  id: number;
  docs?: PackedDoc[];
  error?: string;
}

/** Packs updates as (u32 LE length, bytes)*. */
export function packUpdates(updates: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const u of updates) total += 4 + u.length;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const u of updates) {
    view.setUint32(at, u.length, true);
    out.set(u, at + 4);
    at += 4 + u.length;
  }
  return out;
}

function unpackUpdates(packed: Uint8Array): Uint8Array[] {
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  const out: Uint8Array[] = [];
  for (let at = 0; at < packed.length; ) {
    const length = view.getUint32(at, true);
    out.push(packed.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return out;
}

interface MirrorDoc {
  snapshot: Uint8Array | null;
  log: Array<{ seq: number; update: Uint8Array }>;
  lastSeq: number;
}

/** The page side: reads from memory, writes queued to the worker, one request in flight at a time. */
export class OpfsWorkerStore implements DocStore {
  /** Resolves once close() was called and the worker has closed the database. */
  readonly closed: Promise<void>;
  readonly #worker: Worker;
  readonly #docs = new Map<string, MirrorDoc>();
  readonly #pending = new Map<number, { resolve: (r: HostReply) => void; reject: (e: Error) => void }>();
  #nextId = 0;
  #queue: HostOp[] = [];
  #inFlight: Promise<void> | null = null;
  #failure: Error | null = null;
  #closing = false;
  #resolveClosed!: () => void;

  private constructor(worker: Worker) {
    this.#worker = worker;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    worker.onmessage = (e: MessageEvent<HostReply>) => {
      const waiter = this.#pending.get(e.data.id);
      if (!waiter) return;
      this.#pending.delete(e.data.id);
      if (e.data.error) waiter.reject(new Error(e.data.error));
      else waiter.resolve(e.data);
    };
    worker.onerror = (e) => {
      const error = new Error(`opfs worker: ${e.message}`);
      this.#failure ??= error;
      for (const waiter of this.#pending.values()) waiter.reject(error);
      this.#pending.clear();
    };
  }

  /** Starts the worker at `url`, opens store `name` there and reads it whole into the mirror. */
  static async open(url: string, name: string): Promise<OpfsWorkerStore> {
    const store = new OpfsWorkerStore(new Worker(url, { type: 'module' }));
    try {
      const reply = await store.#request({ kind: 'open', name });
      for (const d of reply.docs ?? []) {
        const updates = unpackUpdates(d.updates);
        let seq = d.lastSeq - updates.length;
        store.#docs.set(d.docId, { snapshot: d.snapshot, lastSeq: d.lastSeq, log: updates.map((update) => ({ seq: ++seq, update })) });
      }
      return store;
    } catch (error) {
      store.#worker.terminate();
      throw error;
    }
  }

  #request(body: HostBody): Promise<HostReply> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      const request: HostRequest = { ...body, id };
      this.#worker.postMessage(request);
    });
  }

  #doc(docId: string): MirrorDoc {
    let doc = this.#docs.get(docId);
    if (!doc) this.#docs.set(docId, (doc = { snapshot: null, log: [], lastSeq: 0 }));
    return doc;
  }

  load(docId: string): StoredDoc {
    const doc = this.#docs.get(docId);
    return { snapshot: doc?.snapshot?.slice() ?? null, updates: doc?.log.map((e) => e.update.slice()) ?? [], lastSeq: doc?.lastSeq ?? 0 };
  }

  append(docId: string, updates: readonly Uint8Array[]): number {
    if (this.#failure) throw this.#failure;
    const doc = this.#doc(docId);
    if (updates.length === 0) return doc.lastSeq;
    const copies = updates.map((u) => u.slice());
    for (const update of copies) doc.log.push({ seq: ++doc.lastSeq, update });
    const last = this.#queue[this.#queue.length - 1];
    if (last?.op === 'append' && last.docId === docId) last.updates.push(...copies);
    else this.#queue.push({ op: 'append', docId, updates: copies });
    this.#pump();
    return doc.lastSeq;
  }

  compact(docId: string, snapshot: Uint8Array, throughSeq: number): void {
    if (this.#failure) throw this.#failure;
    const doc = this.#doc(docId);
    doc.snapshot = snapshot.slice();
    doc.log = doc.log.filter((e) => e.seq > throughSeq);
    this.#queue.push({ op: 'compact', docId, snapshot: doc.snapshot, throughSeq });
    this.#pump();
  }

  /** Sends what is queued unless a write is in flight; the next batch collects meanwhile. */
  #pump(): void {
    if (this.#inFlight || this.#queue.length === 0 || this.#failure) return;
    const ops = this.#queue;
    this.#queue = [];
    this.#inFlight = this.#request({ kind: 'write', ops }).then(
      () => {
        this.#inFlight = null;
        this.#pump();
      },
      (error: unknown) => {
        this.#failure ??= error instanceof Error ? error : new Error(String(error));
        this.#inFlight = null;
      },
    );
  }

  async #drain(): Promise<void> {
    while (this.#inFlight) await this.#inFlight;
    if (this.#failure) throw this.#failure;
  }

  stats(docId: string): StoreStats {
    const doc = this.#docs.get(docId);
    let updateBytes = 0;
    for (const e of doc?.log ?? []) updateBytes += e.update.length;
    return { updates: doc?.log.length ?? 0, updateBytes, snapshotBytes: doc?.snapshot?.length ?? 0, lastSeq: doc?.lastSeq ?? 0 };
  }

  docIds(): string[] {
    return [...this.#docs.keys()];
  }

  /** Every write queued before the call committed in the worker, then the file flushed to disk. */
  async flush(): Promise<void> {
    await this.#drain();
    await this.#request({ kind: 'sync' });
  }

  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    void this.#drain()
      .catch(() => undefined)
      .then(() => this.#request({ kind: 'close' }))
      .catch(() => undefined)
      .then(() => {
        this.#worker.terminate();
        this.#resolveClosed();
      });
  }
}
