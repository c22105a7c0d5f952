/**
 * Applying updates received from a peer.
 *
 * Yjs re-encodes every transaction as an update for its `'update'` listeners (the database's
 * router, persistence, the mailbox, an app's own), walking every struct the transaction touched.
 * For a large received update (an initial sync's step 2: 4 MB and 200,000 structs for 100,000
 * nodes) that re-encoding costs about as much as a fifth of applying it, and it produces what
 * the listeners could have had for free: the bytes that just arrived. So a single remote update
 * of at least {@link REENCODE_SKIP_BYTES} is applied with every `'update'` listener called once with
 * those bytes, the peer session as origin, the doc and the transaction (the arguments Yjs passes),
 * where Yjs would have emitted them, and Yjs's encoding of that one transaction skipped
 * ({@link muteUpdateOnce}); transactions an observer opens meanwhile reach the listeners after it.
 *
 * Several updates received together (a coalesced frame of live writes) take the ordinary path:
 * one transaction, one `'update'` event with Yjs's encoding of it, as Yjs promises. Handing
 * each received update to the listeners instead would turn one event into thousands (a frame of
 * a streaming writer holds one update per put), and a listener that does work per event (the
 * persistence's append, an app's observer) would do it thousands of times.
 *
 * The received bytes are a valid Yjs update holding at least what the transaction changed
 * (structs the doc already had, or structs still waiting for a missing dependency, may be in it
 * too); applying an update twice changes nothing, so a listener that stores or forwards them
 * ends up with the same document. A transaction that changed nothing emits nothing, as with Yjs.
 * Smaller updates take the ordinary path.
 */
import * as Y from 'yjs';
import * as codec from './codec.js';
import { integrateUpdate } from './integrate.js';
import { applyQueuedWrites } from './put-batch.js';
import { changed, emitDocUpdate, hasDocUpdateListeners, muteUpdateOnce, updatesPath } from './doc-updates.js';

/** Received bytes from which a remote update is handed to `'update'` listeners as is (see the module description). */
export const REENCODE_SKIP_BYTES = 64 * 1024;

type UpdateListener = (update: Uint8Array, origin: unknown, doc: Y.Doc, tr: Y.Transaction) => void;

/**
 * The listener registry of lib0's Observable, which Y.Doc extends (`_observers: Map<name, Set<fn>>`),
 * when it has an `'update'` listener (a set's, or a database document's hook: doc-updates.ts).
 */
function updateListeners(doc: Y.Doc): { registry: Map<string, Set<UpdateListener>> } | null {
  const registry = (doc as unknown as { _observers?: unknown })._observers;
  if (!(registry instanceof Map)) return null;
  if (!hasDocUpdateListeners(registry as Map<string, Set<unknown>>)) return null;
  return { registry: registry as Map<string, Set<UpdateListener>> };
}

/**
 * Applies `updates` (received from `origin`) in one transaction. When it is one large update,
 * Yjs's re-encoding for `'update'` listeners is skipped and the listeners get the received bytes
 * (see the module description).
 *
 * An error thrown once the updates are integrated comes from an observer or listener (Yjs calls
 * every observer, then rethrows the first error): the updates are in the document and reached the
 * `'update'` listeners all the same. With `listenerErrors` it goes to its `reportError` instead
 * of being thrown, so a caller can tell a bad update (thrown) from a failing app observer.
 */
export function applyRemoteUpdates(
  doc: Y.Doc,
  updates: readonly Uint8Array[],
  origin: unknown,
  listenerErrors?: { reportError(error: Error): void },
): void {
  // Nothing to integrate (the step 2 between replicas whose documents are empty, the answer to
  // a held request): no transaction at all. Yjs would open one, run its cleanup and emit its
  // transaction events for no change. With structs or deletes pending, Yjs retries the pending
  // deletes on any update, so that case takes the ordinary path.
  if (allEmpty(updates) && doc.store.pendingStructs === null && doc.store.pendingDs === null) return;
  // Local writes queued earlier in this task go first (ARCHITECTURE § Write batching).
  applyQueuedWrites(doc);
  const state = { applied: false };
  try {
    apply(doc, updates, origin, state);
  } catch (error) {
    if (!state.applied || listenerErrors === undefined) throw error;
    listenerErrors.reportError(error instanceof Error ? error : new Error(String(error)));
  }
}

/** True if every update is Yjs v1's empty update (no structs, empty delete set: `[0, 0]`). */
function allEmpty(updates: readonly Uint8Array[]): boolean {
  for (const u of updates) if (u.length !== 2 || u[0] !== 0 || u[1] !== 0) return false;
  return true;
}

function apply(doc: Y.Doc, updates: readonly Uint8Array[], origin: unknown, state: { applied: boolean }): void {
  let bytes = 0;
  for (const u of updates) bytes += u.length;
  // Inside a transaction already, Yjs emits for the outer one: only the ordinary path is right.
  const nested = (doc as unknown as { _transaction?: unknown })._transaction != null;
  // Structs or deletes waiting for a dependency may be let in by this update: the transaction then
  // holds more than the received bytes, and only Yjs's encoding of it is right.
  const pending = doc.store.pendingStructs !== null || doc.store.pendingDs !== null;
  // Handing the received bytes to the listeners relies on Yjs internals (doc-updates.ts updatesPath).
  const large = updates.length === 1 && bytes >= REENCODE_SKIP_BYTES && !nested && !pending && (updatesPath.fast || updatesPath.check());
  const found = large ? updateListeners(doc) : null;
  if (found === null) {
    // A remote transaction from its start (`local: false`, as Yjs's applyUpdate opens it), so
    // that 'beforeTransaction' listeners (the write batch's) see it as one.
    Y.transact(
      doc,
      () => {
        for (const update of updates) codec.applyUpdate(doc, update, origin);
        state.applied = true;
      },
      origin,
      false,
    );
    return;
  }
  // The listeners get the received bytes at the point of the cleanup chain where Yjs would emit
  // this transaction's 'update' (right after its 'afterTransactionCleanup'), and Yjs's encoding of
  // this one transaction is skipped. Not by taking the listeners out for the whole apply: a
  // transaction an observer opens (an app that writes on a remote change) is cleaned up in the same
  // chain, and its update must reach them too, after this one.
  const { registry } = found;
  let transaction: Y.Transaction | null = null;
  let handled = false;
  let restore: (() => void) | null = null;
  const onCleanup = (tr: Y.Transaction): void => {
    if (tr !== transaction) return;
    handled = true;
    doc.off('afterTransactionCleanup', onCleanup);
    // An update that failed half way (structs in, delete set bad): Yjs encodes what was integrated.
    if (!state.applied || !changed(tr) || !hasDocUpdateListeners(registry)) return;
    emitDocUpdate(registry, updates[0]!, origin, doc, tr);
    restore = muteUpdateOnce(doc, registry);
  };
  // Registered last: after useFastUpdates's own cleanup listener, which clears its mute flag.
  doc.on('afterTransactionCleanup', onCleanup);
  let observerError: { error: unknown } | null = null;
  let failed: { error: unknown } | null = null;
  try {
    Y.transact(
      doc,
      (tr) => {
        transaction = tr;
        // One large update: integrated without Yjs's per-struct garbage when it is the common case
        // (integrate.ts), else by Yjs.
        const update = updates[0]!;
        if (!integrateUpdate(tr, update, origin)) codec.applyUpdate(doc, update, origin);
        state.applied = true;
      },
      origin,
      false,
    );
  } catch (error) {
    // An observer failed after the update was integrated: the listeners got it all the same. An
    // update that failed half way is thrown once the listeners got what was integrated.
    if (state.applied) observerError = { error };
    else failed = { error };
  } finally {
    doc.off('afterTransactionCleanup', onCleanup);
    // The chain is over: whatever was muted is unmuted (also if a listener threw in between).
    (restore as (() => void) | null)?.();
  }
  const tr = transaction as Y.Transaction | null;
  if (!handled && failed === null && tr !== null && changed(tr)) {
    // The cleanup never reached this transaction's listeners (another cleanup listener threw).
    emitDocUpdate(registry, updates[0]!, origin, doc, tr);
  }
  if (failed !== null) throw failed.error;
  if (observerError !== null) throw observerError.error;
}
