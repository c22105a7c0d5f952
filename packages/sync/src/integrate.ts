/**
 * Integrating one large received update (an initial sync's step 2) without Yjs's per-struct garbage.
 *
 * `Y.applyUpdate` (yjs 13.6) reads every struct of an update into an `Item`, then integrates them
 * one by one. For a 100,000-node step 2 (200,000 map entries) it allocates about 216 MB, of which
 * about half is garbage made per struct: `Item#integrate` makes two `Set`s for the conflict scan of
 * every entry whose key is new (~60 MB), `integrateStructs` a closure per struct for its state
 * cache (~17 MB), the reader a closure per struct in `Doc#get` to look up the root type by name
 * (~21 MB). That garbage is what drives the scavenges of a cold sync, and each scavenge copies the
 * document built so far (BENCHMARKS.md § Issue 12, Session 14 (cold)).
 *
 * {@link integrateUpdate} does what `Y.applyUpdate` does for such an update inside the caller's
 * transaction, in the same order, with the same result, allocating only what the document keeps:
 * 1. It reads the structs (Yjs's v1 format, through {@link FastUpdateDecoderV1}) into `Item`s and
 *    `GC`s, as Yjs's `readClientsStructRefs` does. It declines (returns false, the document
 *    untouched) for anything outside the common case, and the caller then takes `Y.applyUpdate`:
 *    content other than `any`, strings and deleted ranges (nested types, binaries, embeds,
 *    formats, subdocuments), `Skip` structs, a client whose structs do not start exactly at the
 *    document's state for it, pending structs or deletes in the document. An `any` item's values
 *    get an array of their exact length (Yjs's reader pushes into `[]`, which makes room for 16:
 *    128 B more per map entry, kept for the document's life).
 * 2. It runs Yjs's integration order (`integrateStructs`: the highest client first, a struct whose
 *    dependency of another client is not integrated yet waits on a stack while that client's
 *    structs go first) on clocks alone, and declines if that order would leave any struct
 *    waiting (a dependency missing from the update and the document: Yjs would keep it pending).
 * 3. It integrates the structs in that order. A map entry whose integration needs no conflict
 *    scan — its left neighbour (the item its origin names) has nothing on its right, or it is the
 *    first entry of a key the map does not hold, with no right origin — under a root type is
 *    linked here exactly as `Item#integrate` links it (the scan would find nothing: no `Set`s);
 *    every other struct goes through Yjs's own `getMissing` and `integrate`.
 * 4. The delete set goes to Yjs as an update without structs (`[0]` + the delete set), applied in
 *    the same transaction.
 * `integrate.test.ts` compares documents, encoded states, delete sets and changed keys with
 * `Y.applyUpdate`'s for fresh and partly synced documents, several clients, overwritten and
 * deleted entries, concurrent writes to one key, and every declined case.
 */
import * as Y from 'yjs';
import * as decoding from 'lib0/decoding';
import { FastUpdateDecoderV1, codecPath } from './codec.js';
import { FastPath } from './yjs-guard.js';

/** Yjs's struct info bits (yjs 13.6 `readClientsStructRefs`). */
const BITS5 = 31;
const HAS_PARENT_SUB = 32;
const HAS_RIGHT_ORIGIN = 64;
const HAS_ORIGIN = 128;
/** Content refs (`info & BITS5`) read here; any other declines. */
const REF_GC = 0;
const REF_DELETED = 1;
const REF_STRING = 4;
const REF_ANY = 8;

/** Yjs's internals of a type that this module reads and writes (as nodes.ts `setEntry` does). */
interface TypeInternals {
  _map: Map<string, Y.Item>;
  _item: Y.Item | null;
}

/** The structs of one client in the update, in clock order, and how many are taken. */
interface ClientRefs {
  client: number;
  refs: Array<Y.Item | Y.GC>;
  i: number;
}

/**
 * Integrates `update` (Yjs v1) into `tr`'s document, as `Y.applyUpdate` would inside that
 * transaction, when it is the common case (see the module description); returns false and leaves
 * the document as it was otherwise. `tr` must be the document's open transaction; like Yjs's
 * reader, a handled update marks it remote (`local: false`).
 */
export function integrateUpdate(tr: Y.Transaction, update: Uint8Array, origin: unknown): boolean {
  if (!integratePath.fast && !integratePath.check()) return false; // declined (yjs-guard.ts): the caller takes Yjs
  const doc = tr.doc;
  const store = doc.store;
  if (store.pendingStructs !== null || store.pendingDs !== null) return false;
  const decoder = new FastUpdateDecoderV1(decoding.createDecoder(update));
  const clients = read(decoder, doc);
  if (clients === null) return false;
  const order = integrationOrder(clients, store);
  if (order === null) return false;
  // As Yjs's readUpdateV2 does: whatever opened the transaction, applying an update makes it remote.
  tr.local = false;
  for (let k = 0; k < order.length; k++) {
    const struct = order[k]!;
    if (struct instanceof Y.Item) integrateItem(tr, store, struct);
    else struct.integrate(tr, 0);
  }
  // The delete set, as an update without structs, in this transaction (Yjs's own reader: pending
  // deletes and the delete set's effects are Yjs's).
  const rest = decoder.restDecoder;
  const dsStart = rest.pos;
  if (!(update.length - dsStart === 1 && update[dsStart] === 0)) {
    const ds = new Uint8Array(1 + update.length - dsStart);
    ds.set(update.subarray(dsStart), 1);
    Y.applyUpdateV2(doc, ds, origin, FastUpdateDecoderV1);
  }
  return true;
}

/**
 * Reads the structs of `decoder` into `Item`s and `GC`s per client, in the update's client order;
 * null for anything this module leaves to Yjs. Root types named by the update are looked up
 * (created) as Yjs's reader does.
 */
function read(decoder: FastUpdateDecoderV1, doc: Y.Doc): ClientRefs[] | null {
  const rest = decoder.restDecoder;
  const store = doc.store;
  const share = doc.share as Map<string, Y.AbstractType<unknown>>;
  let lastName: string | null = null;
  let lastType: Y.AbstractType<unknown> | null = null;
  const count = decoding.readVarUint(rest);
  const out: ClientRefs[] = [];
  for (let c = 0; c < count; c++) {
    const n = decoding.readVarUint(rest);
    const client = decoder.readClient();
    let clock = decoding.readVarUint(rest);
    if (n === 0) continue;
    // Structs the document has in part or not next to its own: Yjs's offsets and pending.
    if (clock !== Y.getState(store, client)) return null;
    const refs = new Array<Y.Item | Y.GC>(n);
    for (let i = 0; i < n; i++) {
      const info = decoder.readInfo();
      const ref = info & BITS5;
      if (ref === REF_GC) {
        const len = decoder.readLen();
        refs[i] = new Y.GC(Y.createID(client, clock), len);
        clock += len;
        continue;
      }
      if (ref !== REF_ANY && ref !== REF_STRING && ref !== REF_DELETED) return null;
      const itemOrigin = (info & HAS_ORIGIN) === HAS_ORIGIN ? decoder.readLeftID() : null;
      const rightOrigin = (info & HAS_RIGHT_ORIGIN) === HAS_RIGHT_ORIGIN ? decoder.readRightID() : null;
      const cantCopyParentInfo = (info & (HAS_RIGHT_ORIGIN | HAS_ORIGIN)) === 0;
      let parent: Y.AbstractType<unknown> | Y.ID | null = null;
      if (cantCopyParentInfo) {
        if (decoder.readParentInfo()) {
          const name = decoder.readString();
          if (name !== lastName) {
            lastType = share.get(name) ?? doc.get(name);
            lastName = name;
          }
          parent = lastType;
        } else parent = decoder.readLeftID();
      }
      const parentSub = cantCopyParentInfo && (info & HAS_PARENT_SUB) === HAS_PARENT_SUB ? decoder.readString() : null;
      let content: Y.ContentAny | Y.ContentString | Y.ContentDeleted;
      if (ref === REF_ANY) {
        // An array of exactly its length: Yjs's reader pushes into `[]`, whose first push gives it
        // room for 16 (184 B for a map entry's one value against 56 B; BENCHMARKS.md § Issue 12,
        // Session 14 (cold)). ContentAny never grows its array in place (it splices and concats).
        const len = decoder.readLen();
        let values: unknown[];
        if (len === 1) values = [decoder.readAny()];
        else {
          values = new Array<unknown>(len);
          for (let j = 0; j < len; j++) values[j] = decoder.readAny();
        }
        content = new Y.ContentAny(values);
      } else if (ref === REF_STRING) content = new Y.ContentString(decoder.readString());
      else content = new Y.ContentDeleted(decoder.readLen());
      const item = new Y.Item(Y.createID(client, clock), null, itemOrigin, null, rightOrigin, parent as Y.AbstractType<unknown>, parentSub, content);
      refs[i] = item;
      clock += item.length;
    }
    out.push({ client, refs, i: 0 });
  }
  return out;
}

/**
 * The order in which Yjs's `integrateStructs` integrates `clients` into `store`, run on clocks
 * alone; null if it would leave a struct pending (a dependency neither in the update nor in the
 * document, or a cycle) or meet a struct that is not next in its client's clock order.
 */
function integrationOrder(clients: ClientRefs[], store: Y.Doc['store']): Array<Y.Item | Y.GC> | null {
  let total = 0;
  for (const c of clients) total += c.refs.length;
  const byClient = new Map<number, ClientRefs>();
  const state = new Map<number, number>();
  for (const c of clients) {
    if (byClient.has(c.client)) return null; // a client twice in one update: Yjs's reader keeps the last
    byClient.set(c.client, c);
    state.set(c.client, c.refs[0]!.id.clock);
  }
  const clockOf = (client: number): number => state.get(client) ?? Y.getState(store, client);
  /** The first dependency of `s` on another client that is not integrated yet (Yjs's `getMissing` order). */
  const missing = (s: Y.Item | Y.GC): number | null => {
    if (!(s instanceof Y.Item)) return null;
    const own = s.id.client;
    const o = s.origin;
    if (o !== null && o.client !== own && o.clock >= clockOf(o.client)) return o.client;
    const r = s.rightOrigin;
    if (r !== null && r.client !== own && r.clock >= clockOf(r.client)) return r.client;
    const p = s.parent;
    if (p instanceof Y.ID && p.client !== own && p.clock >= clockOf(p.client)) return p.client;
    return null;
  };
  // Yjs takes the clients from the highest id down.
  const ids = clients.map((c) => c.client).sort((a, b) => a - b);
  const nextTarget = (): ClientRefs | null => {
    while (ids.length > 0) {
      const t = byClient.get(ids[ids.length - 1]!)!;
      if (t.i < t.refs.length) return t;
      ids.pop();
    }
    return null;
  };
  const order = new Array<Y.Item | Y.GC>(total);
  let done = 0;
  const stack: Array<Y.Item | Y.GC> = [];
  let target = nextTarget();
  if (target === null) return order;
  let head = target.refs[target.i++]!;
  for (;;) {
    const client = head.id.client;
    if (clockOf(client) !== head.id.clock) return null;
    const waitOn = missing(head);
    if (waitOn !== null) {
      const dep = byClient.get(waitOn);
      if (dep === undefined || dep.i === dep.refs.length || stack.length >= total) return null;
      stack.push(head);
      head = dep.refs[dep.i++]!;
      continue;
    }
    // A dependency on an earlier struct of the same client must be earlier in clock order.
    if (head instanceof Y.Item && !sameClientDepsBefore(head)) return null;
    order[done++] = head;
    state.set(client, head.id.clock + head.length);
    const popped = stack.pop();
    if (popped !== undefined) head = popped;
    else if (target.i < target.refs.length) head = target.refs[target.i++]!;
    else {
      target = nextTarget();
      if (target === null) break;
      head = target.refs[target.i++]!;
    }
  }
  return done === total ? order : null;
}

/** True if the origins and parent of `item` that name its own client come before it. */
function sameClientDepsBefore(item: Y.Item): boolean {
  const { client, clock } = item.id;
  const o = item.origin;
  if (o !== null && o.client === client && o.clock >= clock) return false;
  const r = item.rightOrigin;
  if (r !== null && r.client === client && r.clock >= clock) return false;
  const p = item.parent;
  if (p instanceof Y.ID && p.client === client && p.clock >= clock) return false;
  return true;
}

/**
 * `item.getMissing(tr, store)` then `item.integrate(tr, 0)`, with the map entry that needs no
 * conflict scan under a root type linked here (see the module description); the rest of
 * `Item#integrate` for that case — link, `_map`, replaced entry deleted, `addStruct`, the content's
 * integrate, `addChangedTypeToTransaction` — in Yjs's order.
 */
function integrateItem(tr: Y.Transaction, store: Y.Doc['store'], item: Y.Item): void {
  item.getMissing(tr, store); // every dependency is integrated (integrationOrder): sets left, right, parent
  const parent = item.parent as (Y.AbstractType<unknown> & TypeInternals) | null;
  const key = item.parentSub;
  const left = item.left;
  if (parent === null || key === null || parent._item !== null || item.right !== null || item.rightOrigin !== null) {
    item.integrate(tr, 0);
    return;
  }
  if (left === null ? parent._map.has(key) : left.right !== null) {
    item.integrate(tr, 0);
    return;
  }
  // No conflict scan: `left` (if any) is the key's rightmost item, and nothing is on its right.
  if (left !== null) left.right = item;
  parent._map.set(key, item);
  if (left !== null) left.delete(tr);
  const clients = store.clients as Map<number, Array<Y.Item | Y.GC>>;
  const structs = clients.get(item.id.client);
  if (structs === undefined) clients.set(item.id.client, [item]);
  else structs.push(item);
  item.content.integrate(tr, item);
  const changedTypes = tr.changed as Map<unknown, Set<string | null>>;
  let changed = changedTypes.get(parent);
  if (changed === undefined) changedTypes.set(parent, (changed = new Set()));
  changed.add(key);
}

/**
 * What this module relies on, checked once on the loaded yjs (yjs-guard.ts): the v1 struct layout
 * and info bits above; the `Item` constructor `(id, left, origin, right, rightOrigin, parent,
 * parentSub, content)`, `GC(id, length)`, `ContentAny(array)`, `ContentString(string)`,
 * `ContentDeleted(length)`; `Item#getMissing`, `#integrate`, `#delete`, `#length`, `left`/`right`/
 * `origin`/`rightOrigin`/`parent`/`parentSub`; a type's `_map` and `_item`; `store.clients`,
 * `pendingStructs`/`pendingDs`, `Y.getState`; `tr.local` and `tr.changed`; Yjs's integration
 * order; that `Item#integrate` of a map entry without conflicts does only what
 * {@link integrateItem} does; and applying a delete set through `Y.applyUpdateV2`. The self-test
 * integrates a small update of two clients — new, overwritten and deleted map entries, a
 * concurrent write of one key, text, a deleted nested map (deleted content and GC structs) — into a
 * fresh document and into one that holds part of it plus concurrent writes of its own, both with
 * {@link integrateUpdate} and with `Y.applyUpdate`, and compares the documents, the changed keys
 * and the values; and it must be taken (not declined) there.
 */
function integrateSelfTest(): string | null {
  const writer = (client: number): Y.Doc => {
    const doc = new Y.Doc();
    doc.clientID = client;
    return doc;
  };
  const a = writer(31);
  const b = writer(30);
  const put = (doc: Y.Doc, from: number, to: number, value: string): void =>
    doc.transact(() => {
      for (let i = from; i < to; i++) {
        doc.getMap('nodes').set(`n${i}`, true);
        doc.getMap('fields').set(`n${i}\u0000v`, `${value}${i}`);
      }
    });
  put(a, 0, 4, 'a');
  const partial = Y.encodeStateAsUpdate(a);
  put(b, 2, 6, 'b'); // concurrent with a on n2, n3
  put(a, 0, 2, 'again');
  a.transact(() => {
    a.getMap('nodes').delete('n3');
    a.getText('text').insert(0, 'hello');
    const inner = new Y.Map<unknown>();
    a.getMap('m').set('inner', inner);
    inner.set('x', 1);
  });
  a.getMap('m').delete('inner'); // a deleted type: its item's content deleted, its entries GC
  Y.applyUpdate(a, Y.encodeStateAsUpdate(b));
  put(a, 5, 7, 'last'); // origins in b's items
  const local = writer(29);
  Y.applyUpdate(local, partial);
  put(local, 1, 3, 'local');
  for (const prior of [null, Y.encodeStateAsUpdate(local)]) {
    const results: string[] = [];
    for (const how of ['rhizome', 'yjs']) {
      const doc = writer(28);
      if (prior !== null) Y.applyUpdate(doc, prior);
      const update = Y.encodeStateAsUpdate(a, Y.encodeStateVector(doc));
      const changed: string[] = [];
      doc.on('afterTransaction', (tr: Y.Transaction) => {
        for (const [type, keys] of tr.changed) for (const [name, t] of doc.share) if (t === type) changed.push(`${name}:${[...keys].join()}`);
      });
      let handled = false;
      Y.transact(
        doc,
        (tr) => {
          if (how === 'rhizome') handled = integrateUpdate(tr, update, null);
          else Y.applyUpdate(doc, update);
        },
        null,
        false,
      );
      if (how === 'rhizome' && !handled) return `integrateUpdate declined an update it handles (${prior === null ? 'fresh' : 'partly synced'} document)`;
      results.push(Array.from(Y.encodeStateAsUpdate(doc)).join(), changed.join('|'), JSON.stringify(doc.toJSON()));
    }
    const [state, changed, json, yState, yChanged, yJson] = results;
    const where = prior === null ? 'a fresh document' : 'a partly synced document';
    if (state !== yState) return `integrateUpdate made another document than Y.applyUpdate in ${where}`;
    if (changed !== yChanged) return `integrateUpdate changed other keys than Y.applyUpdate in ${where}`;
    if (json !== yJson) return `integrateUpdate left other values than Y.applyUpdate in ${where}`;
  }
  return null;
}

/** The fast path of {@link integrateUpdate} (yjs-guard.ts): it returns false (the caller takes Yjs) when declined. */
export const integratePath = new FastPath('integrate', integrateSelfTest, [codecPath]);
