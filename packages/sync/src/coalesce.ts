/**
 * Coalescing of outgoing messages per turn of the event loop.
 *
 * A session (or a broadcast group) that has something to send asks the database's
 * {@link TurnScheduler} for a flush instead of sending at once; the scheduler runs every
 * requested flush once, on the next turn. Everything written within one macrotask therefore
 * leaves as one message per peer (one seal, one transport send), at the cost of at most one
 * turn of latency.
 *
 * While the database is streaming — a flush sent something on the previous turn and more is
 * asked for right away — the scheduler lingers one more turn, so a writer that yields after
 * every write (one write per macrotask) still gets two turns' writes into one frame. The added
 * latency stays bounded by one turn either way; an isolated write (the paced case) is never
 * held back more than the first turn.
 */

/** Something with queued output that the scheduler flushes. */
export interface Flushable {
  /** Sends what is queued (starting the sender if it is idle). Must not throw. */
  flush(): void;
}

/** Runs `fn` on the next turn of the event loop (the platform's macrotask: `setImmediate` in Node). */
export type TurnRunner = (fn: () => void) => void;

/** Flushes requested {@link Flushable}s once per turn (see the module description). */
export class TurnScheduler {
  readonly #nextTurn: TurnRunner;
  #pending = new Set<Flushable>();
  #scheduled = false;
  /** A flush ran on the current turn (cleared on the next one). */
  #recent = false;
  readonly #clearRecent = (): void => {
    this.#recent = false;
  };
  readonly #run = (): void => {
    this.#scheduled = false;
    const due = this.#pending;
    if (due.size === 0) return;
    this.#pending = new Set();
    if (!this.#recent) {
      this.#recent = true;
      this.#nextTurn(this.#clearRecent);
    }
    for (const target of due) target.flush();
  };
  readonly #linger = (): void => {
    this.#nextTurn(this.#run);
  };

  constructor(nextTurn: TurnRunner) {
    this.#nextTurn = nextTurn;
  }

  /** Asks for `target.flush()` on the next turn (or the one after, while streaming). Idempotent per turn. */
  request(target: Flushable): void {
    this.#pending.add(target);
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#nextTurn(this.#recent ? this.#linger : this.#run);
  }
}
