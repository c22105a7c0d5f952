// The worker behind OpfsWorkerStore (opfs-worker-store.ts): SQLite in OPFS (sqlite-wasm,
// opfs-sahpool) through OpfsSqliteStore; each `write` request is committed before it is answered.
import sqlite3InitModule from '@sqlite.org/sqlite-wasm';
import { OpfsSqliteStore, type OpfsJournal, type OpfsSynchronous } from './opfs-sqlite-store.js';
import { packUpdates, type HostReply, type HostRequest, type PackedDoc } from './opfs-worker-store.js';

const params = new URL(self.location.href).searchParams;
const synchronous = (params.get('synchronous') ?? 'FULL') as OpfsSynchronous;
const journal = (params.get('journal') ?? 'TRUNCATE') as OpfsJournal;
const scope = globalThis as unknown as { onmessage: ((e: MessageEvent<HostRequest>) => void) | null; postMessage(m: HostReply, transfer?: Transferable[]): void };

let store: OpfsSqliteStore | undefined;
let pause: (() => void) | undefined;
// Requests run one after another, in the order they came.
let chain: Promise<void> = Promise.resolve();

async function handle(request: HostRequest): Promise<HostReply> {
  switch (request.kind) {
    case 'open': {
      const sqlite3 = await sqlite3InitModule();
      const pool = await sqlite3.installOpfsSAHPoolVfs({ name: 'rhizome-bench', initialCapacity: 10 });
      pause = () => void pool.pauseVfs();
      store = new OpfsSqliteStore(pool, `/${request.name}.sqlite3`, synchronous, journal);
      const docs: PackedDoc[] = store.docIds().map((docId) => {
        const { snapshot, updates, lastSeq } = store!.load(docId);
        return { docId, snapshot, updates: packUpdates(updates), lastSeq };
      });
      return { id: request.id, docs };
    }
    case 'write':
      for (const op of request.ops) {
        if (op.op === 'append') store!.append(op.docId, op.updates);
        else store!.compact(op.docId, op.snapshot, op.throughSeq);
      }
      return { id: request.id };
    case 'sync':
      await store!.flush();
      return { id: request.id };
    case 'close':
      store?.close();
      store = undefined;
      pause?.();
      return { id: request.id };
  }
}

scope.onmessage = (event) => {
  chain = chain.then(() =>
    handle(event.data).then(
      (reply) => {
        const buffers = new Set<ArrayBuffer>();
        for (const d of reply.docs ?? []) for (const bytes of [d.snapshot, d.updates]) if (bytes) buffers.add(bytes.buffer as ArrayBuffer);
        scope.postMessage(reply, [...buffers]);
      },
      (error: unknown) => scope.postMessage({ id: event.data.id, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) }),
    ),
  );
};
