/**
 * The database's `Y.Doc`: a `Y.Doc` whose events are emitted without lib0's per-call garbage.
 *
 * Yjs emits six document events per transaction (`beforeAllTransactions`, `beforeTransaction`,
 * `beforeObserverCalls`, `afterTransaction`, `afterTransactionCleanup`, `afterAllTransactions`),
 * most of them with no listener. lib0's `ObservableV2#emit` (0.2.x) is
 * `array.from((this._observers.get(name) || map.create()).values()).forEach(f => f(...args))`:
 * a new `Map` when nobody listens, an array, a closure and a spread call every time. For one put
 * per macrotask that was ~1.8 µs of a ~25 µs put (BENCHMARKS.md § Issue 12, Session 9). This
 * class emits the same way — the listeners of the moment, in registration order, from a copy (a
 * listener that adds or removes listeners changes the next emission, not this one), a throw
 * stops the rest — and does nothing when there is no listener. Everything else is Yjs's `Doc`:
 * apps see a `Y.Doc` (`db.doc instanceof Y.Doc`), and subdocuments stay plain `Y.Doc`s.
 */
import * as Y from 'yjs';

/** lib0's listener registry (`_observers`), which Y.Doc inherits. */
type Registry = Map<string, Set<(...args: unknown[]) => void>>;

/** Gets a database document's updates first, with Yjs's `'update'` arguments (doc-updates.ts `setUpdateHook`). */
export interface DocUpdateHook {
  onDocUpdate(update: Uint8Array, origin: unknown, doc: Y.Doc, tr: Y.Transaction): void;
}

/**
 * lib0 Observable's listener registry (`_observers: Map<name, Set<fn>>`, which Y.Doc extends) as a
 * database's document (and any document given doc-updates.ts `useFastUpdates`) has it: the same
 * entries, plus
 * - a one-shot answer "no `'update'` listener" to the one `has('update')` Yjs makes right after
 *   `'afterTransactionCleanup'` of a transaction whose update Rhizome already delivered
 *   (`muteNext`, set by `useFastUpdates`'s hook);
 * - the database's own `'update'` listener as an object in a field (`hook`): `has('update')` is true
 *   while it is set, and it is called before the listeners of the `'update'` set
 *   (`DatabaseDoc.emit`, doc-updates.ts `emitDocUpdate`).
 * Every other read and write is the Map's.
 */
export class UpdateRegistry extends Map<string, Set<(...args: never[]) => void>> {
  /** Set once a transaction's update was delivered; consumed by Yjs's next `has('update')`. */
  muteNext = false;
  hook: DocUpdateHook | null = null;

  override has(name: string): boolean {
    if (name === 'update') {
      if (this.muteNext) {
        this.muteNext = false;
        return false;
      }
      if (this.hook !== null) return true;
    }
    return super.has(name);
  }
}

/** `whenSynced` of every database document that is synced (nothing waits on it: one shared promise). */
const SYNCED: Promise<void> = Promise.resolve();

/** True while a {@link DatabaseDoc}'s `Y.Doc` constructor runs (its `whenLoaded` assignment is ignored). */
let constructing = false;

/** What Yjs emits right before it encodes a transaction for `'update'` (doc-updates.ts `useFastUpdates`). */
export type CleanupHook = (tr: Y.Transaction, doc: Y.Doc) => void;

/**
 * A `Y.Doc` with a cheaper `emit` (see the module description), loaded and synced in Yjs's sense
 * from the start.
 *
 * `Y.Doc`'s constructor makes `whenLoaded` and `whenSynced` pending promises with a `'load'` and
 * two `'sync'` listeners (two closures, their contexts, two promises with their resolvers: ~0.6
 * KiB per document) for a provider to settle. A database's document has been read from its
 * store when the app first sees it (`openDatabase` resolves after that), so it starts loaded and
 * synced: `isLoaded`/`isSynced` true, both promises resolved, no listeners. A `'sync'` event an app
 * or provider emits on it still moves `isSynced` and `whenSynced` as Yjs's own listener would
 * ({@link syncTransition}).
 */
export class DatabaseDoc extends Y.Doc {
  constructor(options?: ConstructorParameters<typeof Y.Doc>[0]) {
    constructing = true;
    try {
      super(options);
    } finally {
      constructing = false;
    }
    const registry = new UpdateRegistry(this._observers as unknown as Registry);
    this._observers = registry as unknown as typeof this._observers;
    registry.delete('load');
    registry.delete('sync');
    this.isLoaded = true;
    this.isSynced = true;
    // whenLoaded: a prototype getter (a resolved promise per read, see below), no field.
    this.whenSynced = SYNCED;
  }

  /**
   * @internal Called with every `'afterTransactionCleanup'` before its listeners (doc-updates.ts
   * `useFastUpdates`): the fast-update hook is a field of the document, not an entry in a lib0
   * listener set of its own (~0.15 KiB per document with its table).
   */
  cleanupHook: CleanupHook | null = null;

  /**
   * @internal The awareness bound to this document (sync/src/presence.ts), destroyed with it: it
   * registers no `'destroy'` listener of its own.
   */
  presence: { destroy(): void } | null = null;

  /** Destroys the document as `Y.Doc` does, then its awareness (what y-protocols' listener did). */
  override destroy(): void {
    const presence = this.presence;
    this.presence = null;
    super.destroy();
    presence?.destroy();
  }

  override emit<N extends Parameters<Y.Doc['emit']>[0]>(name: N, args: Parameters<Y.Doc['emit']>[1]): void {
    if (name === 'sync') syncTransition(this, (args as unknown as unknown[])[0]);
    else if (name === 'afterTransactionCleanup' && this.cleanupHook !== null) this.cleanupHook((args as unknown as [Y.Transaction])[0], this);
    const registry = this._observers as unknown as UpdateRegistry;
    const list = args as unknown as unknown[];
    if (name === 'update' && registry.hook !== null) registry.hook.onDocUpdate(...(list as Parameters<DocUpdateHook['onDocUpdate']>));
    const listeners = registry.get(name) as Set<(...args: unknown[]) => void> | undefined;
    if (listeners === undefined) return;
    if (listeners.size === 1) {
      // The common case: one listener, called without a copy (what it adds or removes cannot
      // reach this emission: nothing else is called).
      listeners.values().next().value!(...list);
      return;
    }
    for (const listener of Array.from(listeners)) listener(...list);
  }
}

/**
 * `subdocs`, made at its first read: Yjs's constructor gives every document an empty `Set` (~0.15
 * KiB with its table) that a database's document, which holds no subdocument unless an app puts
 * one in, would keep for its whole life. Yjs reads it only where subdocuments come and go
 * (`getSubdocs`, a transaction that added or removed one, `destroy`), so the first of those makes it.
 */
Object.defineProperty(DatabaseDoc.prototype, 'subdocs', {
  configurable: true,
  get(this: { _subdocs?: Set<Y.Doc> | null }): Set<Y.Doc> {
    return (this._subdocs ??= new Set());
  },
  set(this: { _subdocs?: Set<Y.Doc> | null }, value: Set<Y.Doc>) {
    // Yjs's constructor assigns an empty set: keep none until one is needed.
    this._subdocs = value.size === 0 ? null : value;
  },
});

/**
 * `whenLoaded`, resolved (the document is loaded from the start): a promise made at each read, not
 * one kept per document. Yjs's constructor assigns a pending one, which is dropped; an app or
 * provider that assigns one later gets it back from every read.
 */
Object.defineProperty(DatabaseDoc.prototype, 'whenLoaded', {
  configurable: true,
  get(this: Y.Doc & { _whenLoaded?: Promise<Y.Doc> }): Promise<Y.Doc> {
    return this._whenLoaded ?? Promise.resolve(this);
  },
  set(this: { _whenLoaded?: Promise<Y.Doc> }, value: Promise<Y.Doc>) {
    if (!constructing) this._whenLoaded = value;
  },
});

/**
 * What Yjs's own `'sync'` listener does (yjs 13.6 `Doc` constructor), run before the event's
 * listeners: `sync` with `false` on a synced document makes `whenSynced` pending again until a
 * `sync` with `true` (or no argument); `isLoaded` stays true.
 */
function syncTransition(doc: Y.Doc, isSynced: unknown): void {
  const synced = isSynced === undefined || isSynced === true;
  if (!synced && doc.isSynced) {
    doc.whenSynced = new Promise<void>((resolve) => {
      const onSync = (value: boolean): void => {
        if (value === undefined || value === true) {
          doc.off('sync', onSync);
          resolve();
        }
      };
      doc.on('sync', onSync);
    });
  }
  doc.isSynced = synced;
}
