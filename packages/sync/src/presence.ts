/**
 * The database's awareness: y-protocols' `Awareness` whose periodic check (renew the local state
 * every 15 s, drop remote states not renewed for 30 s) runs on one shared timer for every
 * database of the process instead of a `setInterval` each (ticker.ts; ARCHITECTURE § Memory of an
 * idle replica). The check is y-protocols' own, at its period (`outdatedTimeout / 10`); like the
 * timer it replaces, the shared one keeps the process alive while a database is open.
 */
import * as time from 'lib0/time';
import * as awarenessProtocol from 'y-protocols/awareness';
import type * as Y from 'yjs';
import { joinTicker, leaveTicker } from './ticker.js';
import { DatabaseDoc } from './database-doc.js';

/** y-protocols' check period: `outdatedTimeout / 10`. */
const CHECK_MS = Math.floor(awarenessProtocol.outdatedTimeout / 10);

/**
 * {@link DatabaseAwareness}'s error sink: a listener that threw during a check. A function, or an
 * object whose `reportError` is called (a database passes its host: no closure per database).
 */
export type PresenceErrorSink = ((error: unknown) => void) | { reportError(error: unknown): void };

/** What an awareness `'update'` (and `'change'`) event says changed. */
export interface AwarenessChanges {
  added: number[];
  updated: number[];
  removed: number[];
}

/** Gets a database awareness's `'update'` events first (the database's host: a method, not a closure). */
export interface AwarenessHook {
  onAwarenessUpdate(changes: AwarenessChanges, origin: unknown): void;
}

type Listener = (...args: unknown[]) => void;

export class DatabaseAwareness extends awarenessProtocol.Awareness {
  readonly #onError: PresenceErrorSink;
  /**
   * The database's own `'update'` listener, called before the listeners of `on('update')`: a
   * field, not an entry in lib0's registry, which an idle database's awareness therefore does not
   * hold at all (`_observers` is made at the first `on()`: a `Map` and a `Set` with their tables
   * and a closure, ~0.4 KiB per database; ARCHITECTURE § Memory of an idle replica).
   */
  hook: AwarenessHook | null = null;
  /** lib0's registry (read and written as `_observers`, see below): null while nobody listens. */
  declare _lazyObservers: Map<string, Set<Listener>> | null;

  constructor(doc: Y.Doc, onError: PresenceErrorSink) {
    super(doc);
    clearInterval(this._checkInterval);
    this._checkInterval = undefined;
    this.#onError = onError;
    joinTicker(this, CHECK_MS, true);
    if (doc instanceof DatabaseDoc) {
      // y-protocols' `doc.on('destroy', () => this.destroy())` (the listener it just added, a
      // closure and a set in the document's registry) is replaced by the database document's own
      // destroy(), which destroys its awareness.
      const registry = doc._observers as unknown as Map<string, Set<unknown>>;
      const listeners = registry.get('destroy');
      if (listeners !== undefined && listeners.size > 0) {
        listeners.delete([...listeners][listeners.size - 1]);
        if (listeners.size === 0) registry.delete('destroy');
        doc.presence = this;
      }
    }
  }

  /** The check y-protocols' interval ran (awareness.js, 1.0.x), reported instead of thrown. */
  safeTick(): void {
    try {
      const now = time.getUnixTime(); // y-protocols' clock (meta's lastUpdated)
      const local = this.getLocalState();
      const own = this.meta.get(this.clientID);
      if (local !== null && own !== undefined && awarenessProtocol.outdatedTimeout / 2 <= now - own.lastUpdated) {
        // renew the local clock
        this.setLocalState(local);
      }
      let remove: number[] | null = null;
      this.meta.forEach((meta, client) => {
        if (client !== this.clientID && awarenessProtocol.outdatedTimeout <= now - meta.lastUpdated && this.states.has(client)) (remove ??= []).push(client);
      });
      if (remove !== null) awarenessProtocol.removeAwarenessStates(this, remove, 'timeout');
    } catch (error) {
      const sink = this.#onError;
      if (typeof sink === 'function') sink(error);
      else sink.reportError(error);
    }
  }

  /** As lib0's Observable emits (the listeners of the moment, from a copy; a throw stops the rest), the hook first. */
  override emit(name: string, args: unknown[]): void {
    // (`hook` is not defined yet while y-protocols' constructor emits its first local state.)
    if (name === 'update' && this.hook != null) this.hook.onAwarenessUpdate(args[0] as AwarenessChanges, args[1]);
    const listeners = this._lazyObservers?.get(name);
    if (listeners === undefined) return;
    for (const listener of Array.from(listeners)) listener(...args);
  }

  override off(name: string, f: Listener): void {
    const observers = this._lazyObservers;
    if (observers === null || observers === undefined) return;
    super.off(name, f);
    if (observers.size === 0) this._lazyObservers = null;
  }

  override destroy(): void {
    leaveTicker(this, CHECK_MS, true);
    super.destroy();
  }
}

/**
 * lib0's listener registry, made at the first read (`on()`): Observable's constructor and destroy()
 * assign an empty `Map`, which is dropped (see {@link DatabaseAwareness.hook}).
 */
Object.defineProperty(DatabaseAwareness.prototype, '_observers', {
  configurable: true,
  get(this: DatabaseAwareness): Map<string, Set<Listener>> {
    return (this._lazyObservers ??= new Map());
  },
  set(this: DatabaseAwareness, value: Map<string, Set<Listener>>) {
    this._lazyObservers = value.size === 0 ? null : value;
  },
});
