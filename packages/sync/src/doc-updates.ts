/**
 * Large local transactions encoded once, with the fast v1 encoder, for the doc's `'update'`
 * listeners.
 *
 * Yjs encodes every transaction for its `'update'` listeners with lib0's `UpdateEncoderV1`, which
 * writes each string (a root type's name, a map key, a string value) with one
 * `TextEncoder.encodeInto` call, and walks `doc.share` to name the root type of every item. For
 * a batch of puts that is most of the cost of encoding its update (BENCHMARKS.md § Issue 12,
 * Session 6). {@link useFastUpdates} installs, on a document Rhizome made, a listener of
 * `'afterTransactionCleanup'` (which Yjs emits for every transaction immediately before it
 * encodes the transaction for `'update'`, on the same state): for a LOCAL transaction that added
 * at least {@link FAST_MIN_STRUCTS} structs of this client, it writes the update exactly as
 * Yjs's `writeUpdateMessageFromTransaction` does (the structs from the transaction's
 * `beforeState` on, then its delete set) with {@link FastUpdateEncoderV1}, hands it to every
 * `'update'` listener (Rhizome's and the app's, with Yjs's arguments), and mutes Yjs's own
 * encoding of that one transaction (the `'update'` listeners are taken out of lib0's registry and
 * put back before the next transaction's observers run, or when the cleanup ends). Same bytes,
 * byte for byte (`doc-updates.test.ts`). Smaller transactions (a single put) take Yjs's own path
 * unchanged: for them the JavaScript walk was measured slower than Yjs's (same session).
 *
 * {@link onDocUpdate} is where Rhizome's own code registers for the doc's updates (today: Yjs's
 * `'update'` event).
 */
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import { FastUpdateEncoderV1 } from './codec.js';

/** A listener of {@link onDocUpdate}: Yjs's `'update'` arguments. */
export type DocUpdateListener = (update: Uint8Array, origin: unknown, doc: Y.Doc, tr: Y.Transaction) => void;

/** Structs a local transaction adds, from which {@link useFastUpdates} encodes it (16 puts of a 3-field node add 64). */
export const FAST_MIN_STRUCTS = 64;

/**
 * Calls `listener` with the update of every transaction of `doc` that changed something, with
 * Yjs's `'update'` arguments (update, origin, doc, transaction). Returns the function that stops
 * it.
 */
export function onDocUpdate(doc: Y.Doc, listener: DocUpdateListener): () => void {
  doc.on('update', listener);
  return () => doc.off('update', listener);
}

/**
 * Stops a listener added with {@link onDocUpdate}: for holders that keep the listener anyway and
 * would rather not keep a stop closure too (an idle database holds three of them).
 */
export function offDocUpdate(doc: Y.Doc, listener: DocUpdateListener): void {
  doc.off('update', listener);
}

/** lib0 Observable's listener registry, which Y.Doc extends (`_observers: Map<name, Set<fn>>`). */
function registryOf(doc: Y.Doc): Map<string, Set<DocUpdateListener>> | null {
  const registry = (doc as unknown as { _observers?: unknown })._observers;
  return registry instanceof Map ? (registry as Map<string, Set<DocUpdateListener>>) : null;
}

/**
 * The `'update'` listeners taken out of a document's registry while Yjs's encoding of one of its
 * transactions is muted (see {@link useFastUpdates}); a document has an entry only while muted.
 */
const mutedListeners = new WeakMap<Y.Doc, Set<DocUpdateListener>>();

/**
 * Encodes `doc`'s large local transactions for its `'update'` listeners with the fast encoder
 * (see the module description). Returns the function that stops it (as {@link stopFastUpdates}).
 * For documents Rhizome makes (the database's); a no-op if lib0's registry is not where this
 * version of Yjs keeps it.
 *
 * The listeners are module functions (Yjs passes the document), and the muted state is kept per
 * document only while muted: an idle document holds one entry in its `'afterTransactionCleanup'`
 * set and nothing else (no closures, no context per document; ARCHITECTURE § Memory of an idle
 * replica).
 */
export function useFastUpdates(doc: Y.Doc): () => void {
  if (registryOf(doc) === null) return () => undefined;
  doc.on('afterTransactionCleanup', fastCleanup);
  return () => stopFastUpdates(doc);
}

/** Stops {@link useFastUpdates} on `doc` (Yjs's own encoding of every transaction again). */
export function stopFastUpdates(doc: Y.Doc): void {
  doc.off('afterTransactionCleanup', fastCleanup);
  restoreUpdates(doc);
}

/** Puts the muted `'update'` listeners of `doc` back (a no-op when none are muted). */
function restoreUpdates(doc: Y.Doc): void {
  const listeners = mutedListeners.get(doc);
  if (listeners === undefined) return;
  mutedListeners.delete(doc);
  // Listened to only while muted: an idle document holds no Set for these two events.
  doc.off('beforeObserverCalls', restoreBeforeObservers);
  doc.off('afterAllTransactions', restoreUpdates);
  const registry = registryOf(doc);
  if (registry === null) return;
  // Listeners added meanwhile (by a listener or an observer) join the ones that were there.
  const added = registry.get('update');
  if (added !== undefined) for (const l of added) listeners.add(l);
  registry.set('update', listeners);
}

/** `'beforeObserverCalls'` (transaction, doc): see {@link restoreUpdates}. */
function restoreBeforeObservers(_tr: Y.Transaction, doc: Y.Doc): void {
  restoreUpdates(doc);
}

/** `'afterTransactionCleanup'` of a document with {@link useFastUpdates}. */
function fastCleanup(tr: Y.Transaction, doc: Y.Doc): void {
  restoreUpdates(doc);
  if (!tr.local) return;
  const registry = registryOf(doc);
  const listeners = registry?.get('update');
  if (registry == null || listeners === undefined || listeners.size === 0) return;
  const client = doc.clientID;
  if ((tr.afterState.get(client) ?? 0) - (tr.beforeState.get(client) ?? 0) < FAST_MIN_STRUCTS) return;
  const update = encodeTransaction(tr);
  if (update === null) return;
  // As lib0's Observable emits: a copy of the set, in order; a throw stops the rest (Yjs's emit
  // would have stopped there too). The registry keeps the live set while they run, so a listener
  // that removes itself (`doc.once`) or another one stays removed.
  for (const listener of [...listeners]) listener(update, tr.origin, doc, tr);
  // Then Yjs's own encoding of this transaction is muted (it looks for 'update' listeners next).
  const live = registry.get('update');
  if (live === undefined) return;
  registry.delete('update');
  mutedListeners.set(doc, live);
  // Put back before the next transaction's observers (a transaction an observer opened is
  // cleaned up after this one, in the same chain) and when the chain ends.
  doc.on('beforeObserverCalls', restoreBeforeObservers);
  doc.on('afterAllTransactions', restoreUpdates);
}

/** True if `tr` deleted something or some client's clock moved (what makes Yjs emit `'update'`). */
export function changed(tr: Y.Transaction): boolean {
  if (tr.deleteSet.clients.size > 0) return true;
  for (const [client, clock] of tr.afterState) if (tr.beforeState.get(client) !== clock) return true;
  return false;
}

/**
 * The update of a finished transaction as Yjs's `writeUpdateMessageFromTransaction` writes it for
 * `'update'` (yjs 13.6: `writeClientsStructs(encoder, store, tr.beforeState)` then
 * `writeDeleteSet(encoder, tr.deleteSet)`), with {@link FastUpdateEncoderV1}; `null` when the
 * transaction changed nothing (Yjs then emits no `'update'`). `encoder` is for tests and
 * benchmarks (`new Y.UpdateEncoderV1()` gives Yjs's string writer).
 */
export function encodeTransaction(tr: Y.Transaction, encoder: Y.UpdateEncoderV1 = new FastUpdateEncoderV1()): Uint8Array | null {
  if (!changed(tr)) return null;
  const ds = tr.deleteSet;
  sortAndMergeDeleteSet(ds);
  writeClientsStructs(encoder, tr.doc, tr.beforeState);
  writeDeleteSet(encoder, ds);
  return encoder.toUint8Array();
}

type Struct = Y.Item | Y.GC | Y.Skip;

/** Yjs's `sortAndMergeDeleteSet` (idempotent; Yjs already ran it when the transaction's cleanup began). */
function sortAndMergeDeleteSet(ds: Y.Transaction['deleteSet']): void {
  for (const dels of ds.clients.values()) {
    dels.sort((a, b) => a.clock - b.clock);
    let i: number;
    let j: number;
    for (i = 1, j = 1; i < dels.length; i++) {
      const left = dels[j - 1]!;
      const right = dels[i]!;
      if (left.clock + left.len >= right.clock) {
        left.len = Math.max(left.len, right.clock + right.len - left.clock);
      } else {
        if (j < i) dels[j] = right;
        j++;
      }
    }
    dels.length = j;
  }
}

/** Yjs's `writeClientsStructs(encoder, doc.store, beforeState)`. */
function writeClientsStructs(encoder: Y.UpdateEncoderV1, doc: Y.Doc, before: Map<number, number>): void {
  const store = doc.store;
  const clients = store.clients as Map<number, Struct[]>;
  const sm = new Map<number, number>();
  for (const [client, clock] of before) if (Y.getState(store, client) > clock) sm.set(client, clock);
  for (const client of clients.keys()) if (!before.has(client)) sm.set(client, 0);
  encoding.writeVarUint(encoder.restEncoder, sm.size);
  // Higher client ids first, as Yjs writes them.
  const order = [...sm.entries()].sort((a, b) => b[0] - a[0]);
  const roots = new RootKeys(doc.share);
  for (const [client, clock] of order) writeStructs(encoder, clients.get(client)!, client, clock, roots);
}

/** Yjs's `writeStructs`, with {@link writeItem} for items. */
function writeStructs(encoder: Y.UpdateEncoderV1, structs: Struct[], client: number, from: number, roots: RootKeys): void {
  const clock = Math.max(from, structs[0]!.id.clock);
  const start = Y.findIndexSS(structs, clock);
  encoding.writeVarUint(encoder.restEncoder, structs.length - start);
  encoder.writeClient(client);
  encoding.writeVarUint(encoder.restEncoder, clock);
  const first = structs[start]!;
  writeStruct(encoder, first, clock - first.id.clock, roots);
  for (let i = start + 1; i < structs.length; i++) writeStruct(encoder, structs[i]!, 0, roots);
}

function writeStruct(encoder: Y.UpdateEncoderV1, struct: Struct, offset: number, roots: RootKeys): void {
  if (struct instanceof Y.Item) writeItem(encoder, struct, offset, roots);
  else struct.write(encoder, offset);
}

/** The names of a document's root types (`doc.share`), looked up once per update. */
class RootKeys {
  readonly #share: Map<string, unknown>;
  #keys: Map<unknown, string> | null = null;

  constructor(share: Map<string, unknown>) {
    this.#share = share;
  }

  /** Yjs's `findRootTypeKey`: the first name under which `type` is shared. */
  of(type: unknown): string | undefined {
    if (this.#keys === null) {
      this.#keys = new Map();
      for (const [key, value] of this.#share) if (!this.#keys.has(value)) this.#keys.set(value, key);
    }
    return this.#keys.get(type);
  }
}

/** lib0's binary.BIT8, BIT7, BIT6, BITS5: the info byte of an item. */
const HAS_ORIGIN = 0x80;
const HAS_RIGHT_ORIGIN = 0x40;
const HAS_PARENT_SUB = 0x20;
const CONTENT_REF = 0x1f;

/**
 * Yjs's `Item.prototype.write(encoder, offset)` (yjs 13.6), with the name of a root parent type
 * taken from `roots` (Yjs walks `doc.share`'s entries for every item, allocating as it goes).
 * An item whose parent is not a type (only in updates Yjs merges without a doc) takes Yjs's path.
 */
function writeItem(encoder: Y.UpdateEncoderV1, item: Y.Item, offset: number, roots: RootKeys): void {
  const parent = item.parent as { _item?: Y.Item | null } | null;
  if (parent === null || typeof parent !== 'object' || parent._item === undefined) {
    item.write(encoder, offset);
    return;
  }
  const origin = offset > 0 ? Y.createID(item.id.client, item.id.clock + offset - 1) : item.origin;
  const rightOrigin = item.rightOrigin;
  const parentSub = item.parentSub;
  const rest = encoder.restEncoder;
  encoding.writeUint8(
    rest,
    (item.content.getRef() & CONTENT_REF) |
      (origin === null ? 0 : HAS_ORIGIN) |
      (rightOrigin === null ? 0 : HAS_RIGHT_ORIGIN) |
      (parentSub === null ? 0 : HAS_PARENT_SUB),
  );
  if (origin !== null) {
    encoding.writeVarUint(rest, origin.client);
    encoding.writeVarUint(rest, origin.clock);
  }
  if (rightOrigin !== null) {
    encoding.writeVarUint(rest, rightOrigin.client);
    encoding.writeVarUint(rest, rightOrigin.clock);
  }
  if (origin === null && rightOrigin === null) {
    const parentItem = parent._item;
    if (parentItem === null) {
      const key = roots.of(parent);
      if (key === undefined) {
        // Not a root type of this doc: Yjs throws its unexpected-case error here.
        item.write(encoder, offset);
        return;
      }
      encoding.writeVarUint(rest, 1);
      encoder.writeString(key);
    } else {
      encoding.writeVarUint(rest, 0);
      encoding.writeVarUint(rest, parentItem.id.client);
      encoding.writeVarUint(rest, parentItem.id.clock);
    }
    if (parentSub !== null) encoder.writeString(parentSub);
  }
  item.content.write(encoder, offset);
}

/** Yjs's `writeDeleteSet` (v1: plain var-uints). */
function writeDeleteSet(encoder: Y.UpdateEncoderV1, ds: Y.Transaction['deleteSet']): void {
  const rest = encoder.restEncoder;
  encoding.writeVarUint(rest, ds.clients.size);
  const order = [...ds.clients.entries()].sort((a, b) => b[0] - a[0]);
  for (const [client, items] of order) {
    encoder.resetDsCurVal();
    encoding.writeVarUint(rest, client);
    encoding.writeVarUint(rest, items.length);
    for (const item of items) {
      encoder.writeDsClock(item.clock);
      encoder.writeDsLen(item.len);
    }
  }
}
