import * as Y from 'yjs';
import type { JsonValue } from '@rhizome/core';
import { cloneJson } from './validate.js';
import type { PendingWrite } from './put-batch.js';
import { FastPath } from './yjs-guard.js';

/** Name of the root `Y.Map` of live node markers (`nodeId -> true`). */
export const NODES_MAP = 'nodes';
/** Name of the root `Y.Map` of field values (`nodeId + U+0000 + field -> value`). */
export const FIELDS_MAP = 'fields';

const SEP = '\u0000';

/** Yjs's key -> current item index of a map type, and its `_item` (null for a root type). */
interface MapInternals {
  _map: Map<string, Y.Item>;
  _item: Y.Item | null;
}

/**
 * `map.set(key, value)` inside the open transaction `tr`, for a JSON value: exactly what Yjs's
 * `typeMapSet` does for one (yjs 13.6: a new `Item` with `ContentAny([value])` after the key's
 * current item, integrated), without `Y.Map#set`'s nested `transact` call and closure per entry.
 *
 * For a root map (the node model's two maps) the item is also integrated here, as
 * `Item#integrate(tr, 0)` does for a map entry whose left is the key's current item: that item
 * is always the rightmost one of the key (Yjs keeps `_map` pointing at it), so Yjs's conflict scan
 * finds nothing, yet for a NEW key it allocates two `Set`s to find that out, and it looks the key
 * up twice more; here the entry is linked (left, `_map`), the replaced item deleted, the struct
 * appended to the store and the key added to `tr.changed` in Yjs's order, with one lookup. Any
 * other case (a nested map, a current item with something on its right) takes Yjs's `integrate`.
 * `nodes.test.ts` checks the result is byte for byte the document, the updates, the delete sets
 * and the changed keys of `Y.Map#set`, also with concurrent remote entries. (Exported for
 * bench/sync.ts's floor rows, not from the package.)
 */
export function setEntry(tr: Y.Transaction, map: Y.Map<unknown>, key: string, value: JsonValue | true): void {
  if (!setEntryPath.fast && !setEntryPath.check()) {
    // Declined (yjs-guard.ts): Yjs's own, inside the open transaction `tr`.
    map.set(key, value);
    return;
  }
  const type = map as unknown as MapInternals;
  const left = type._map.get(key) ?? null;
  const doc = tr.doc;
  const client = doc.clientID;
  const clients = doc.store.clients as Map<number, Array<Y.Item | Y.GC | Y.Skip>>;
  const structs = clients.get(client);
  let clock = 0;
  if (structs !== undefined) {
    const last = structs[structs.length - 1]!;
    clock = last.id.clock + last.length;
  }
  const item = new Y.Item(
    Y.createID(client, clock),
    left,
    left === null ? null : left.lastId,
    null,
    null,
    map as unknown as Y.AbstractType<unknown>,
    key,
    new Y.ContentAny([value]),
  );
  if (type._item !== null || (left !== null && left.right !== null)) {
    item.integrate(tr, 0);
    return;
  }
  // Item#integrate for this case: right stays null, the item becomes the key's current value and
  // the one it replaces is deleted; then addStruct, ContentAny#integrate (a no-op) and
  // addChangedTypeToTransaction (a root type: always).
  if (left !== null) left.right = item;
  type._map.set(key, item);
  if (left !== null) left.delete(tr);
  if (structs === undefined) clients.set(client, [item]);
  else structs.push(item);
  const changedTypes = tr.changed as Map<unknown, Set<string | null>>;
  let changed = changedTypes.get(map);
  if (changed === undefined) changedTypes.set(map, (changed = new Set()));
  changed.add(key);
}

/**
 * What {@link setEntry} relies on, checked once on the loaded yjs (yjs-guard.ts): the `Item`
 * constructor `(id, left, origin, right, rightOrigin, parent, parentSub, content)`, `ContentAny`
 * of an array, a map type's `_map` (key -> rightmost item) and `_item` (null for a root type),
 * `Item#lastId`/`right`/`delete`, `store.clients` (client -> structs in clock order),
 * `tr.changed`, and that `Item#integrate` of a map entry whose left is the key's rightmost item
 * does only what the fast case does (link, `_map`, delete the replaced item, `addStruct`,
 * `ContentAny#integrate` a no-op, the key in `tr.changed`). The self-test writes the same entries
 * with setEntry and with `Y.Map#set` into two documents of one client id — new keys, overwrites
 * in one transaction, a concurrent remote entry of the same key, a nested map — and compares every
 * update, the changed keys, the delete sets, the documents and their values.
 */
function setEntrySelfTest(): string | null {
  const ours = new Y.Doc();
  const theirs = new Y.Doc();
  ours.clientID = theirs.clientID = 20;
  const remote = new Y.Doc();
  remote.clientID = 21;
  const seen = (doc: Y.Doc): string[] => {
    const out: string[] = [];
    doc.on('update', (u: Uint8Array) => out.push(Array.from(u).join()));
    doc.on('afterTransaction', (tr: Y.Transaction) => {
      for (const [type, keys] of tr.changed as Map<unknown, Set<string | null>>) out.push(`${type === doc.getMap(NODES_MAP) ? 'n' : type === doc.getMap(FIELDS_MAP) ? 'f' : '?'}:${[...keys].join()}`);
      for (const [client, items] of tr.deleteSet.clients) out.push(`${client}:${items.map((d) => `${d.clock}+${d.len}`).join()}`);
    });
    return out;
  };
  const a = seen(ours);
  const b = seen(theirs);
  const write = (entries: Array<[string, string, JsonValue | true]>): void => {
    ours.transact((tr) => {
      for (const [map, key, value] of entries) setEntry(tr, ours.getMap(map), key, value);
    });
    theirs.transact(() => {
      for (const [map, key, value] of entries) theirs.getMap(map).set(key, value);
    });
  };
  write([[NODES_MAP, 'a', true], [FIELDS_MAP, 'a\u0000x', 1], [FIELDS_MAP, 'a\u0000y', 'why'], [FIELDS_MAP, 'a\u0000x', { k: ['v', 2] }]]);
  remote.getMap(FIELDS_MAP).set('a\u0000x', 'remote');
  remote.getMap(FIELDS_MAP).set('b\u0000x', 'remote');
  const update = Y.encodeStateAsUpdate(remote);
  Y.applyUpdate(ours, update);
  Y.applyUpdate(theirs, update);
  write([[FIELDS_MAP, 'a\u0000x', 3], [FIELDS_MAP, 'b\u0000x', null], [NODES_MAP, 'b', true]]);
  for (const doc of [ours, theirs]) doc.getMap('m').set('inner', new Y.Map());
  write([['m', 'k', 1]]);
  ours.transact((tr) => setEntry(tr, ours.getMap('m').get('inner') as Y.Map<unknown>, 'k', 'nested'));
  theirs.transact(() => (theirs.getMap('m').get('inner') as Y.Map<unknown>).set('k', 'nested'));
  if (a.join('|') !== b.join('|')) return 'setEntry made other updates, changed keys or delete sets than Y.Map#set';
  const state = Y.encodeStateAsUpdate(ours);
  const expected = Y.encodeStateAsUpdate(theirs);
  if (state.length !== expected.length || state.some((x, i) => x !== expected[i])) return 'setEntry made another document than Y.Map#set';
  if (JSON.stringify(ours.toJSON()) !== JSON.stringify(theirs.toJSON())) return 'setEntry left other values than Y.Map#set';
  return null;
}

/** The fast path of {@link setEntry} (yjs-guard.ts): `Y.Map#set` when it declined. */
export const setEntryPath = new FastPath('setEntry', setEntrySelfTest);

/** A change to one node, as seen after a Yjs transaction. */
export interface NodeChange {
  id: string;
  /** True when the node's marker was removed in this transaction. */
  deleted: boolean;
}

/**
 * The node model on top of a `Y.Doc`.
 *
 * Layout: root map {@link NODES_MAP} holds one marker per live node; root map
 * {@link FIELDS_MAP} holds one entry per field under the key `nodeId U+0000 field`.
 * Every field is its own map entry, so concurrent puts of different fields of one node
 * both survive even when both replicas create the node at the same time (with a nested
 * `Y.Map` per node, two concurrent creations would race for the `nodes[id]` slot and the
 * loser's fields would vanish). `put` re-sets the marker, so a put concurrent with a delete
 * wins (the node survives with the fields the put wrote; the delete removed the fields it saw).
 *
 * An in-memory index `nodeId -> fields` makes `get` O(fields of that node); it is maintained
 * from the map's observer, so it stays right for local, remote and loaded updates alike.
 */
export class NodeModel {
  readonly doc: Y.Doc;
  readonly nodes: Y.Map<true>;
  readonly fields: Y.Map<JsonValue>;
  /** Field names by node id; made with the first field (an empty database holds none). */
  #index: Map<string, Set<string>> | null = null;
  /**
   * Changed key sets not indexed yet: the index is brought up to date on the first read that
   * needs it, so applying a large update (a cold sync, a load) does not pay for indexing on
   * the sync path. `null` means the whole map still has to be indexed.
   */
  #pending: Array<Set<string>> | null = null;
  #pendingKeys = 0;

  constructor(doc: Y.Doc) {
    this.doc = doc;
    this.nodes = doc.getMap<true>(NODES_MAP);
    this.fields = doc.getMap<JsonValue>(FIELDS_MAP);
    // The fields map is observed from the first read that builds the index on (#sync): until then
    // a full indexing is pending anyway, and a replica nobody reads holds no observer.
  }

  /** Notes the keys a transaction changed, for the next read (see {@link #pending}). */
  #onFields(event: Y.YMapEvent<JsonValue>): void {
    if (this.#pending === null) return; // a full indexing is pending anyway
    this.#pending.push(event.keysChanged);
    this.#pendingKeys += event.keysChanged.size;
    // Past half the map's size, indexing everything once costs about what replaying the changes
    // would, and the changed-key sets need not be kept (a bulk load into a small map would
    // otherwise keep every transaction's set until the first read).
    if (this.#pendingKeys > 1024 && this.#pendingKeys * 2 > this.fields.size) this.#pending = null;
  }

  /** The fields map is observed (from the first {@link #sync} on). */
  #observing = false;

  /** Brings the index up to date (see {@link #pending}). */
  #sync(): void {
    if (this.#pending === null) {
      this.#index?.clear();
      for (const key of this.fields.keys()) this.#indexKey(key, true);
    } else if (this.#pending.length > 0) {
      for (const keys of this.#pending) for (const key of keys) this.#indexKey(key, this.fields.has(key));
    } else {
      return;
    }
    this.#pending = [];
    this.#pendingKeys = 0;
    if (!this.#observing) {
      this.#observing = true;
      this.fields.observe((event) => this.#onFields(event));
    }
  }

  #indexKey(key: string, present: boolean): void {
    const cut = key.indexOf(SEP);
    if (cut < 0) return; // not ours: ignore foreign keys written by other code
    const id = key.slice(0, cut);
    const field = key.slice(cut + 1);
    const index = (this.#index ??= new Map());
    let set = index.get(id);
    if (present) {
      if (!set) index.set(id, (set = new Set()));
      set.add(field);
    } else if (set) {
      set.delete(field);
      if (set.size === 0) index.delete(id);
    }
  }

  /** Sets the given fields of `id` (already validated and copied); other fields stay. */
  put(id: string, data: Record<string, JsonValue>, origin: unknown): void {
    // Inside an open transaction (db.transact) Yjs's transact would only call the closure with it.
    const open = this.doc._transaction;
    if (open !== null) this.#write(open, id, data);
    else this.doc.transact((tr) => this.#write(tr, id, data), origin);
  }

  /** The marker and the fields of one put, in the open transaction `tr`. */
  #write(tr: Y.Transaction, id: string, data: Record<string, JsonValue>): void {
    setEntry(tr, this.nodes as Y.Map<unknown>, id, true);
    // `data` is a validated copy: own enumerable keys only, so for...in needs no entries array.
    for (const field in data) setEntry(tr, this.fields as Y.Map<unknown>, id + SEP + field, data[field]!);
  }

  /** Sets the fields of many nodes in one transaction (entries already validated and copied). */
  putMany(entries: ReadonlyArray<readonly [string, Record<string, JsonValue>]>, origin: unknown): void {
    this.doc.transact((tr) => {
      for (const [id, data] of entries) this.#write(tr, id, data);
    }, origin);
  }

  /** Applies queued writes (already validated and copied) in order, as one transaction. */
  apply(writes: readonly PendingWrite[], origin: unknown): void {
    this.doc.transact((tr) => {
      for (const { id, data } of writes) {
        if (data === null) this.delete(id, origin);
        else this.#write(tr, id, data);
      }
    }, origin);
  }

  /** Removes the node and every field this replica knows of. */
  delete(id: string, origin: unknown): void {
    this.#sync();
    if (!this.nodes.has(id) && !this.#index?.has(id)) return;
    this.doc.transact((tr) => {
      this.nodes.delete(id);
      for (const field of [...(this.#index?.get(id) ?? [])]) this.fields.delete(id + SEP + field);
      // Fields set earlier in this same transaction (db.transact) are not indexed yet.
      const prefix = id + SEP;
      const changed = tr.changed.get(this.fields as unknown as Parameters<typeof tr.changed.get>[0]);
      if (changed) for (const key of [...changed]) if (key !== null && key.startsWith(prefix) && this.fields.has(key)) this.fields.delete(key);
    }, origin);
  }

  /** True when the node is live. */
  has(id: string): boolean {
    return this.nodes.has(id);
  }

  /** A copy of the node's fields, or undefined when it is not live. */
  get(id: string): Record<string, JsonValue> | undefined {
    if (!this.nodes.has(id)) return undefined;
    this.#sync();
    const out: Array<[string, JsonValue]> = [];
    for (const field of this.#index?.get(id) ?? []) {
      const value = this.fields.get(id + SEP + field);
      if (value !== undefined) out.push([field, cloneJson(value)]);
    }
    out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    // fromEntries defines own properties, so a field named like a prototype key is safe.
    return Object.fromEntries(out);
  }

  /** Every live node, sorted by id. */
  list(): Array<{ id: string; data: Record<string, JsonValue> }> {
    const ids = [...this.nodes.keys()].sort();
    const out: Array<{ id: string; data: Record<string, JsonValue> }> = [];
    for (const id of ids) {
      const data = this.get(id);
      if (data) out.push({ id, data });
    }
    return out;
  }

  /** Number of live nodes. */
  get size(): number {
    return this.nodes.size;
  }

  /**
   * The nodes a finished transaction touched: ids whose marker or any field changed, with
   * `deleted` set when the marker was removed and not re-set.
   */
  changes(tr: Y.Transaction): NodeChange[] {
    const ids = new Set<string>();
    const markers = tr.changed.get(this.nodes as unknown as Parameters<typeof tr.changed.get>[0]);
    if (markers) for (const key of markers) if (key !== null) ids.add(key);
    const fieldKeys = tr.changed.get(this.fields as unknown as Parameters<typeof tr.changed.get>[0]);
    if (fieldKeys) {
      for (const key of fieldKeys) {
        if (key === null) continue;
        const cut = key.indexOf(SEP);
        if (cut >= 0) ids.add(key.slice(0, cut));
      }
    }
    const out: NodeChange[] = [];
    for (const id of ids) {
      const live = this.nodes.has(id);
      // A marker in `changed` that is absent now was deleted (or added and removed within the
      // transaction, which nobody saw: skip it unless it existed before).
      if (live) out.push({ id, deleted: false });
      else if (markers?.has(id) && existedBefore(tr, this.nodes, id)) out.push({ id, deleted: true });
    }
    return out;
  }
}

/** Whether map entry `key` was live when the transaction began. */
function existedBefore(tr: Y.Transaction, map: Y.Map<true>, key: string): boolean {
  // It was iff the entry's current item (deleted now) predates the transaction and was
  // deleted by it. `_map` is Yjs's own key -> newest item index.
  const item = (map as unknown as { _map: Map<string, Y.Item> })._map.get(key);
  if (!item) return false;
  const before = tr.beforeState.get(item.id.client) ?? 0;
  return item.id.clock < before && Y.isDeleted(tr.deleteSet, item.id);
}
