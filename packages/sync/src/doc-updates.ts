/**
 * Local transactions encoded once, in JavaScript, for the doc's `'update'` listeners.
 *
 * Yjs encodes every transaction for its `'update'` listeners with lib0's `UpdateEncoderV1`, which
 * writes each string (a root type's name, a map key, a string value) with one
 * `TextEncoder.encodeInto` call, walks `doc.share` to name the root type of every item, and
 * starts every update in a new 100-byte buffer. For a batch of puts that is most of the cost of
 * encoding its update (BENCHMARKS.md § Issue 12, Session 6); for a single put it is ~4 µs of a
 * ~25 µs put (Session 9). {@link useFastUpdates} installs, on a document Rhizome made, a listener
 * of `'afterTransactionCleanup'` (which Yjs emits for every transaction immediately before it
 * encodes the transaction for `'update'`, on the same state): for a LOCAL transaction it writes
 * the update exactly as Yjs's `writeUpdateMessageFromTransaction` does (the structs from the
 * transaction's `beforeState` on, then its delete set) with {@link FastUpdateEncoderV1} — a
 * small transaction (a put) into one reused buffer ({@link encodeSmallTransaction}), a large one
 * ({@link FAST_MIN_STRUCTS} structs or more) into its own ({@link encodeTransaction}) — hands it
 * to every `'update'` listener (Rhizome's and the app's, with Yjs's arguments), and then answers
 * Yjs's one question "any `'update'` listener?" for that transaction with no, so Yjs does not
 * encode it again: the document's lib0 listener registry is replaced by an
 * {@link UpdateRegistry}, the same Map with a one-shot flag. Same bytes, byte for byte
 * (`doc-updates.test.ts`). Remote transactions keep Yjs's path (or apply.ts's). One difference an
 * app could see: for a local transaction the `'update'` listeners run inside
 * `'afterTransactionCleanup'` (when Rhizome's listener of it runs, i.e. before `'afterTransactionCleanup'`
 * listeners added after the database opened) rather than right after all of them.
 *
 * {@link onDocUpdate} is where Rhizome's own code registers for the doc's updates (today: Yjs's
 * `'update'` event).
 */
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import { FastUpdateEncoderV1, codecPath } from './codec.js';
import { DatabaseDoc, UpdateRegistry, type DocUpdateHook } from './database-doc.js';
import { FastPath } from './yjs-guard.js';

/** A listener of {@link onDocUpdate}: Yjs's `'update'` arguments. */
export type DocUpdateListener = (update: Uint8Array, origin: unknown, doc: Y.Doc, tr: Y.Transaction) => void;

/** Structs a local transaction adds from which {@link useFastUpdates} encodes it into its own buffer (16 puts of a 3-field node add 64); below, into the reused one. */
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

/** The document's registry, made an {@link UpdateRegistry} (null when this version of lib0 keeps none where expected). */
function updateRegistryOf(doc: Y.Doc): UpdateRegistry | null {
  const holder = doc as unknown as { _observers?: unknown };
  const registry = holder._observers;
  if (registry instanceof UpdateRegistry) return registry;
  if (!(registry instanceof Map) || registry.constructor !== Map) return null;
  const replaced = new UpdateRegistry(registry as Map<string, Set<DocUpdateListener>>);
  holder._observers = replaced;
  return replaced;
}

/**
 * Makes `hook.onDocUpdate` the first `'update'` listener of a database's document (one field of its
 * registry, not an entry in a listener set: ~0.15 KiB per document with the set's table, and no
 * closure), or removes it (`null`). It gets every update with Yjs's arguments, before the
 * listeners added with `doc.on('update')`, wherever they are called (Yjs's emit, {@link
 * useFastUpdates}, apply.ts).
 */
export function setUpdateHook(doc: DatabaseDoc, hook: DocUpdateHook | null): void {
  const registry = doc._observers as unknown as UpdateRegistry;
  const fast = updatesPath.fast || updatesPath.check();
  // Whichever way an earlier hook was set (a test may have switched the path since), it goes.
  const old = hookListeners.get(doc);
  if (old !== undefined) {
    doc.off('update', old);
    hookListeners.delete(doc);
  }
  if (fast || hook === null) {
    registry.hook = fast ? hook : null;
    return;
  }
  // Declined (yjs-guard.ts): the hook is an ordinary 'update' listener, called by Yjs's emit.
  registry.hook = null;
  const listener: DocUpdateListener = (update, origin, d, tr) => hook.onDocUpdate(update, origin, d, tr);
  hookListeners.set(doc, listener);
  doc.on('update', listener);
}

/** The 'update' listener standing in for a document's hook while the {@link updatesPath} declined. */
const hookListeners = new WeakMap<Y.Doc, DocUpdateListener>();

/**
 * Calls `doc`'s `'update'` listeners as lib0's Observable emits, the registry's hook first: the
 * listeners of the moment, from a copy (a listener that adds or removes listeners changes the next
 * emission, not this one); a throw stops the rest.
 */
export function emitDocUpdate(registry: Map<string, Set<unknown>>, update: Uint8Array, origin: unknown, doc: Y.Doc, tr: Y.Transaction): void {
  const hook = registry instanceof UpdateRegistry ? registry.hook : null;
  const listeners = registry.get('update') as Set<DocUpdateListener> | undefined;
  if (hook !== null) hook.onDocUpdate(update, origin, doc, tr);
  if (listeners !== undefined) for (const listener of [...listeners]) listener(update, origin, doc, tr);
}

/** True if `registry` has an `'update'` listener or hook (what makes Yjs encode a transaction). */
export function hasDocUpdateListeners(registry: Map<string, Set<unknown>>): boolean {
  if (registry instanceof UpdateRegistry && registry.hook !== null) return true;
  const listeners = registry.get('update');
  return listeners !== undefined && listeners.size > 0;
}

/**
 * Encodes `doc`'s local transactions for its `'update'` listeners in JavaScript (see the module
 * description). Returns the function that stops it (as {@link stopFastUpdates}). For documents
 * Rhizome makes (the database's); a no-op if lib0's registry is not where this version of Yjs
 * keeps it.
 *
 * The listener is a module function (Yjs passes the document) and the registry keeps its one
 * flag: a database's document ({@link DatabaseDoc}) holds it in its `cleanupHook` field (called
 * from its `emit` before the event's listeners, as the first listener was), any other document one
 * entry in its `'afterTransactionCleanup'` set — no closures, no context per document
 * (ARCHITECTURE § Memory of an idle replica).
 */
export function useFastUpdates(doc: Y.Doc): () => void {
  if ((!updatesPath.fast && !updatesPath.check()) || updateRegistryOf(doc) === null) return () => undefined;
  // A database's document (database-doc.ts) calls its hook from its own emit: no listener set.
  if (doc instanceof DatabaseDoc) doc.cleanupHook = fastCleanup;
  else doc.on('afterTransactionCleanup', fastCleanup);
  return () => stopFastUpdates(doc);
}

/** Stops {@link useFastUpdates} on `doc` (Yjs's own encoding of every transaction again). */
export function stopFastUpdates(doc: Y.Doc): void {
  if (doc instanceof DatabaseDoc && doc.cleanupHook === fastCleanup) doc.cleanupHook = null;
  doc.off('afterTransactionCleanup', fastCleanup);
  const registry = (doc as unknown as { _observers?: unknown })._observers;
  if (registry instanceof UpdateRegistry) registry.muteNext = false;
}

/** `'afterTransactionCleanup'` of a document with {@link useFastUpdates}. */
function fastCleanup(tr: Y.Transaction, doc: Y.Doc): void {
  const registry = (doc as unknown as { _observers?: unknown })._observers;
  if (!(registry instanceof UpdateRegistry)) return;
  // Left set only if a listener threw after it was set and before Yjs read it.
  registry.muteNext = false;
  if (!tr.local || !hasDocUpdateListeners(registry)) return;
  const client = doc.clientID;
  const large = (tr.afterState.get(client) ?? 0) - (tr.beforeState.get(client) ?? 0) >= FAST_MIN_STRUCTS;
  const update = large ? encodeTransaction(tr) : encodeSmallTransaction(tr);
  if (update === null) return;
  // As lib0's Observable emits: a copy of the set, in order; a throw stops the rest (Yjs's emit
  // would have stopped there too). Listeners that remove themselves (`doc.once`) stay removed.
  emitDocUpdate(registry, update, tr.origin, doc, tr);
  // Then Yjs's own encoding of this transaction is skipped: it asks has('update') next.
  registry.muteNext = true;
}

/**
 * Makes Yjs skip its `'update'` encoding of the transaction whose `'afterTransactionCleanup'` is
 * being emitted (its listeners already got its update), and only that one: with
 * {@link useFastUpdates}'s registry by its one-shot flag; with lib0's own Map by taking the
 * `'update'` listeners out until the next transaction's observers or the end of the chain.
 * Returns the function that undoes it, for the end of the chain (idempotent; a no-op once Yjs
 * consumed the flag or the listeners are back).
 */
export function muteUpdateOnce(doc: Y.Doc, registry: Map<string, Set<DocUpdateListener>>): () => void {
  if (registry instanceof UpdateRegistry) {
    registry.muteNext = true;
    return () => {
      registry.muteNext = false;
    };
  }
  const listeners = registry.get('update');
  if (listeners === undefined) return () => undefined;
  registry.delete('update');
  let done = false;
  const restore = (): void => {
    if (done) return;
    done = true;
    doc.off('beforeObserverCalls', restore);
    doc.off('afterAllTransactions', restore);
    // Listeners added meanwhile join the ones that were there.
    const added = registry.get('update');
    if (added !== undefined) for (const l of added) listeners.add(l);
    registry.set('update', listeners);
  };
  doc.on('beforeObserverCalls', restore);
  doc.on('afterAllTransactions', restore);
  return restore;
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

/** The encoder {@link encodeSmallTransaction} reuses (null while in use), and its buffer's sizes. */
let spare: FastUpdateEncoderV1 | null = null;
const SPARE_BYTES = 2048;
const SPARE_MAX_BYTES = 64 * 1024;

/**
 * {@link encodeTransaction} for a small transaction (a put): the same bytes, written into one
 * reused buffer and copied out once, so a put allocates its update and nothing else (a new lib0
 * encoder starts with 100 bytes, which a 3-field put outgrows: two buffers, a list, a copy).
 */
export function encodeSmallTransaction(tr: Y.Transaction): Uint8Array | null {
  if (!changed(tr)) return null;
  const encoder = spare ?? new FastUpdateEncoderV1();
  spare = null;
  const rest = encoder.restEncoder;
  if (rest.cbuf.length < SPARE_BYTES) rest.cbuf = new Uint8Array(SPARE_BYTES);
  rest.cpos = 0;
  try {
    const ds = tr.deleteSet;
    sortAndMergeDeleteSet(ds);
    writeClientsStructs(encoder, tr.doc, tr.beforeState);
    writeDeleteSet(encoder, ds);
    return rest.bufs.length === 0 ? rest.cbuf.slice(0, rest.cpos) : encoding.toUint8Array(rest);
  } finally {
    if (rest.bufs.length > 0) rest.bufs = [];
    if (rest.cbuf.length > SPARE_MAX_BYTES) rest.cbuf = new Uint8Array(SPARE_BYTES);
    rest.cpos = 0;
    spare = encoder;
  }
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
  // [client, clock] of every client with structs from `clock` on (Yjs's `sm`).
  const sm: Array<[number, number]> = [];
  for (const [client, clock] of before) if (Y.getState(store, client) > clock) sm.push([client, clock]);
  // Clients are never removed from the store, and `before` had one entry per client it held.
  if (clients.size > before.size) for (const client of clients.keys()) if (!before.has(client)) sm.push([client, 0]);
  encoding.writeVarUint(encoder.restEncoder, sm.length);
  // Higher client ids first, as Yjs writes them.
  if (sm.length > 1) sm.sort((a, b) => b[0] - a[0]);
  for (const [client, clock] of sm) writeStructs(encoder, clients.get(client)!, client, clock, doc);
}

/** Yjs's `writeStructs`, with {@link writeItem} for items. */
function writeStructs(encoder: Y.UpdateEncoderV1, structs: Struct[], client: number, from: number, doc: Y.Doc): void {
  const clock = Math.max(from, structs[0]!.id.clock);
  const start = Y.findIndexSS(structs, clock);
  encoding.writeVarUint(encoder.restEncoder, structs.length - start);
  encoder.writeClient(client);
  encoding.writeVarUint(encoder.restEncoder, clock);
  const first = structs[start]!;
  writeStruct(encoder, first, clock - first.id.clock, doc);
  for (let i = start + 1; i < structs.length; i++) writeStruct(encoder, structs[i]!, 0, doc);
}

function writeStruct(encoder: Y.UpdateEncoderV1, struct: Struct, offset: number, doc: Y.Doc): void {
  if (struct instanceof Y.Item) writeItem(encoder, struct, offset, doc);
  else struct.write(encoder, offset);
}

/** Root type -> its name in its document's `share` (Yjs's `findRootTypeKey`), found once per type. */
const rootNames = new WeakMap<object, string>();

/**
 * Yjs's `findRootTypeKey`: the name under which `type` is shared in `doc` (a root type is shared
 * under one name, for good: `doc.share` never drops or renames an entry).
 */
function rootName(doc: Y.Doc, type: object): string | undefined {
  let name = rootNames.get(type);
  if (name === undefined) {
    for (const [key, value] of doc.share) {
      if (value === type) {
        name = key;
        rootNames.set(type, key);
        break;
      }
    }
  }
  return name;
}

/** lib0's binary.BIT8, BIT7, BIT6, BITS5: the info byte of an item. */
const HAS_ORIGIN = 0x80;
const HAS_RIGHT_ORIGIN = 0x40;
const HAS_PARENT_SUB = 0x20;
const CONTENT_REF = 0x1f;

/**
 * Yjs's `Item.prototype.write(encoder, offset)` (yjs 13.6), with the name of a root parent type
 * taken from {@link rootName} (Yjs walks `doc.share`'s entries for every item, allocating as it goes).
 * An item whose parent is not a type (only in updates Yjs merges without a doc) takes Yjs's path.
 */
function writeItem(encoder: Y.UpdateEncoderV1, item: Y.Item, offset: number, doc: Y.Doc): void {
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
      const key = rootName(doc, parent);
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
  const order = [...ds.clients.entries()];
  if (order.length > 1) order.sort((a, b) => b[0] - a[0]);
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

/**
 * What this module and database-doc.ts rely on, checked once on the loaded yjs (yjs-guard.ts):
 * lib0's listener registry is `doc._observers`, a plain `Map` of name -> `Set`; Yjs emits every
 * event through `doc.emit`; right after `'afterTransactionCleanup'` it asks
 * `_observers.has('update')` once and, if true, encodes the transaction and emits `'update'`;
 * `tr.beforeState`/`afterState`/`deleteSet`/`local`, `store.clients`, `Y.findIndexSS`, the fields
 * and `write` of `Item`, `GC` and the contents, and Yjs's `writeUpdateMessageFromTransaction` byte
 * order. The self-test runs the same transactions — small and large, local and remote, map
 * entries, nested types, text, deletes, non-ASCII strings — on a database document with
 * {@link useFastUpdates} and {@link setUpdateHook} and on a plain `Y.Doc` of the same client id,
 * and checks that the hook and an `'update'` listener each get Yjs's bytes exactly once per
 * transaction; then that {@link muteUpdateOnce} on a plain registry (apply.ts's path) mutes Yjs's
 * encoding of that one transaction only.
 */
function updatesSelfTest(): string | null {
  const ours = new DatabaseDoc();
  const theirs = new Y.Doc();
  ours.clientID = theirs.clientID = 40;
  const hooked: string[] = [];
  const heard: string[] = [];
  const yjs: string[] = [];
  const text = (u: Uint8Array): string => Array.from(u).join();
  setUpdateHook(ours, { onDocUpdate: (u) => hooked.push(text(u)) });
  ours.on('update', (u: Uint8Array) => heard.push(text(u)));
  theirs.on('update', (u: Uint8Array) => yjs.push(text(u)));
  const stop = useFastUpdates(ours);
  const remote = new Y.Doc();
  remote.clientID = 41;
  remote.getMap('fields').set('r', 'remote');
  const update = Y.encodeStateAsUpdate(remote);
  for (const doc of [ours, theirs]) {
    const nodes = doc.getMap('nodes');
    const fields = doc.getMap('fields');
    nodes.set('a', true);
    doc.transact(() => {
      for (let i = 0; i < FAST_MIN_STRUCTS; i++) fields.set(`n${i}\u0000ünï`, { v: `wörld ${i}`, i });
      const inner = new Y.Map<unknown>();
      nodes.set('inner', inner);
      inner.set('k', 'v');
      doc.getText('t').insert(0, 'hello');
    });
    Y.applyUpdate(doc, update, 'remote');
    doc.transact(() => {
      fields.delete('n1\u0000ünï');
      fields.set('r', 'overwritten');
      doc.getText('t').delete(1, 2);
    });
  }
  stop();
  setUpdateHook(ours, null);
  if (yjs.length !== 4) return `Yjs emitted ${yjs.length} updates for 4 transactions`;
  if (hooked.join('|') !== yjs.join('|')) return "a database document's update hook did not get Yjs's updates once each";
  if (heard.join('|') !== yjs.join('|')) return "an 'update' listener of a database document with fast updates did not get Yjs's updates once each";
  // muteUpdateOnce on lib0's own Map: the listeners get one transaction's update from Rhizome only.
  const plain = new Y.Doc();
  const got: string[] = [];
  plain.on('update', (u: Uint8Array) => got.push(text(u)));
  const registry = (plain as unknown as { _observers: Map<string, Set<DocUpdateListener>> })._observers;
  const once = (tr: Y.Transaction): void => {
    plain.off('afterTransactionCleanup', once);
    emitDocUpdate(registry, new Uint8Array([7]), tr.origin, plain, tr);
    muteUpdateOnce(plain, registry);
  };
  plain.on('afterTransactionCleanup', once);
  plain.getMap('m').set('a', 1);
  plain.getMap('m').set('b', 2);
  if (got.length !== 2 || got[0] !== '7' || got[1] === '7') return "muteUpdateOnce did not mute Yjs's encoding of exactly one transaction";
  return null;
}

/**
 * The fast path of {@link useFastUpdates} and {@link setUpdateHook}, and of apply.ts's large
 * received updates (yjs-guard.ts): when it declined, documents keep Yjs's own encoding, the hook is
 * an ordinary `'update'` listener, and apply.ts takes its ordinary path.
 */
export const updatesPath = new FastPath('updates', updatesSelfTest, [codecPath]);
