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

/** A `Y.Doc` with a cheaper `emit` (see the module description). */
export class DatabaseDoc extends Y.Doc {
  override emit<N extends Parameters<Y.Doc['emit']>[0]>(name: N, args: Parameters<Y.Doc['emit']>[1]): void {
    const listeners = (this._observers as unknown as Registry).get(name);
    if (listeners === undefined) return;
    const list = args as unknown as unknown[];
    if (listeners.size === 1) {
      // The common case: one listener, called without a copy (what it adds or removes cannot
      // reach this emission: nothing else is called).
      listeners.values().next().value!(...list);
      return;
    }
    for (const listener of Array.from(listeners)) listener(...list);
  }
}
