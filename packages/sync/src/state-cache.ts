/**
 * The diff a peer asks for with its sync step 1, with the whole-document case cached.
 *
 * A fresh replica (a new browser tab, a new process without a file) sends an empty state vector,
 * and the answer is the whole document: `Y.encodeStateAsUpdate(doc)`, which for 100,000 nodes
 * walks 200,000 structs (about 0.1 s) while the joiner waits. Replicas that serve many joiners (an
 * always-on `rhizome sync`, the first tab of a page) answer each of them with the same bytes as
 * long as the document has not changed, so the encoding is kept until the next transaction that
 * changes the document and reused (one encoding per change, not one per joiner). Memory: the
 * encoded document (about 40 bytes per node), held only while nothing changes and only from
 * {@link CACHE_MIN_BYTES} up; the first change drops it. Any other state vector is answered by Yjs
 * directly.
 */
import type * as Y from 'yjs';
import * as codec from './codec.js';

/** The encoded state vector of an empty document (no clients). */
function isEmptyStateVector(sv: Uint8Array): boolean {
  return sv.length === 1 && sv[0] === 0;
}

/** Yjs v1's encoding of an empty document (no structs, empty delete set); shared, never modified. */
const EMPTY_DOCUMENT_UPDATE = new Uint8Array([0, 0]);

/** Smallest whole-document encoding worth keeping (below it, encoding again is cheaper than the memory). */
export const CACHE_MIN_BYTES = 64 * 1024;

interface Cached {
  update: Uint8Array;
  drop: () => void;
}

const cache = new WeakMap<Y.Doc, Cached>();

/** True if the transaction added structs or deleted anything. */
function changed(tr: Y.Transaction): boolean {
  if (tr.deleteSet.clients.size > 0) return true;
  for (const [client, clock] of tr.afterState) if ((tr.beforeState.get(client) ?? 0) !== clock) return true;
  return false;
}

/**
 * `Y.encodeStateAsUpdate(doc, stateVector)`, reusing the last whole-document encoding while the
 * document is unchanged when `stateVector` is empty (see the module description). The returned
 * bytes are shared: callers must not modify them.
 */
export function encodeDiff(doc: Y.Doc, stateVector: Uint8Array): Uint8Array {
  // An empty document (a fresh replica answering another): Yjs's encoding is [0, 0] whatever the
  // state vector asks; made without a walk, an encoder and its buffers.
  const store = doc.store;
  if (store.clients.size === 0 && store.pendingStructs === null && store.pendingDs === null) return EMPTY_DOCUMENT_UPDATE;
  if (!isEmptyStateVector(stateVector)) return codec.encodeStateAsUpdate(doc, stateVector);
  const hit = cache.get(doc);
  if (hit) return hit.update;
  const update = codec.encodeStateAsUpdate(doc);
  if (update.length < CACHE_MIN_BYTES) return update;
  const onTransaction = (tr: Y.Transaction): void => {
    if (changed(tr)) drop();
  };
  const drop = (): void => {
    cache.delete(doc);
    doc.off('afterTransaction', onTransaction);
    doc.off('destroy', drop);
  };
  doc.on('afterTransaction', onTransaction);
  doc.on('destroy', drop);
  cache.set(doc, { update, drop });
  return update;
}

/** Drops the cached whole-document encoding of `doc`, if any (on close). */
export function dropEncodedState(doc: Y.Doc): void {
  cache.get(doc)?.drop();
}
