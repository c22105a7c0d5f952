/**
 * Coalescing of outgoing messages per turn of the event loop.
 *
 * A session (or a broadcast group) that has something to send asks the database's
 * {@link TurnScheduler} for a flush instead of sending at once; the scheduler runs every
 * requested flush once, on the next turn. Everything written within one macrotask therefore
 * leaves as one message per peer (one seal, one transport send).
 *
 * **Idle: no added latency beyond the next turn.** A request that comes when no flush ran on
 * the previous turn (the first write after a pause, every write of a paced writer) is flushed on
 * the very next turn, as before.
 *
 * **Streaming: Nagle-like, bounded.** A request that comes right after a flush (a flush ran on
 * the previous turn and more is asked for already: the writer did not pause) starts a *linger*:
 * the scheduler keeps checking once per turn and flushes as soon as a turn passes that brought no
 * new request (the writer paused), or {@link LINGER_MS} have passed since the linger began (but
 * never before the second turn, so even slow turns pair two writes), or {@link LINGER_BYTES}
 * were requested. A writer that yields after every write (one write per
 * macrotask) thus gets every write of about a millisecond into one frame instead of one frame per
 * write, and the latency this adds is bounded by `LINGER_MS` plus one turn while streaming and
 * by nothing once the writer pauses (a turn of an otherwise idle event loop takes microseconds).
 */

/** Longest a streaming writer's oldest queued write is held back to be coalesced with later ones (ms). */
export const LINGER_MS = 1;
/** Requested bytes at which a linger ends early (the frame is full enough). */
export const LINGER_BYTES = 64 * 1024;

/** Something with queued output that the scheduler flushes. */
export interface Flushable {
  /** Sends what is queued (starting the sender if it is idle). Must not throw. */
  flush(): void;
}

/** Runs `fn` on the next turn of the event loop (the platform's macrotask: `setImmediate` in Node). */
export type TurnRunner = (fn: () => void) => void;

/** Counters of a {@link TurnScheduler} (for tests and stats). */
export interface TurnSchedulerStats {
  /** Flush rounds run (each flushes every target requested since the previous one). */
  rounds: number;
  /** Rounds that came after a linger (streaming). */
  lingered: number;
}

/**
 * Flushes requested {@link Flushable}s once per turn (see the module description). A database's
 * host object **is** its scheduler (it extends this class: one object per database, not two —
 * ARCHITECTURE § Memory of an idle replica), so it declares no `#` methods: a class with `#`
 * methods costs each instance one more slot, its subclasses' included.
 */
export class TurnScheduler {
  readonly #nextTurn: TurnRunner;
  readonly #now: () => number;
  #rounds = 0;
  #lingered = 0;
  /** Targets of the next round; null while none (an idle database holds a scheduler). */
  #pending: Set<Flushable> | null = null;
  /** {@link SCHEDULED}, {@link RECENT} (a flush ran on the current turn; cleared on the next one), {@link FRESH}: one small integer. */
  #flags = 0;
  /** Linger state: when it began, turns checked, bytes requested. */
  #lingerSince = 0;
  #lingerTurns = 0;
  #bytes = 0;
  // (The flags are read and set as bits in place: private accessors are `#` methods.)
  // The callbacks handed to the next turn are made per call, not kept as bound fields: an idle
  // database holds its scheduler for its whole life (ARCHITECTURE § Memory of an idle replica).

  /**
   * @param nextTurn runs a function on the next turn (the platform's macrotask).
   * @param now monotonic clock in ms (bounds the linger); `performance.now` by default.
   */
  constructor(nextTurn: TurnRunner, now: () => number = performanceNow) {
    this.#nextTurn = nextTurn;
    this.#now = now;
  }

  /** The function that runs a callback on the next turn (the platform's macrotask) it was made with. */
  get nextTurn(): TurnRunner {
    return this.#nextTurn;
  }

  /** Its counters (a snapshot). */
  get stats(): TurnSchedulerStats {
    return { rounds: this.#rounds, lingered: this.#lingered };
  }

  /**
   * Asks for `target.flush()` on the next turn, or, while streaming, once the writer pauses or
   * the linger bound is reached (see the module description). Idempotent per round. `bytes`
   * (what the caller just queued) counts towards {@link LINGER_BYTES}.
   */
  request(target: Flushable, bytes = 0): void {
    (this.#pending ??= new Set()).add(target);
    this.#flags |= FRESH;
    this.#bytes += bytes;
    if ((this.#flags & SCHEDULED) !== 0) return;
    this.#flags |= SCHEDULED;
    if ((this.#flags & RECENT) !== 0) {
      this.#lingerSince = this.#now();
      this.#lingerTurns = 0;
      this.#nextTurn(() => this.lingerCheck());
    } else {
      this.#nextTurn(() => this.runRound());
    }
  }

  private runRound(): void {
    this.#flags &= ~SCHEDULED;
    this.#bytes = 0;
    const due = this.#pending;
    if (due === null || due.size === 0) return;
    this.#pending = null;
    this.#rounds++;
    if ((this.#flags & RECENT) === 0) {
      this.#flags |= RECENT;
      this.#nextTurn(() => {
        this.#flags &= ~RECENT;
      });
    }
    for (const target of due) target.flush();
  }

  private lingerCheck(): void {
    // The first check always lingers one more turn (so a slow turn still pairs two writes).
    const expired = this.#lingerTurns++ > 0 && this.#now() - this.#lingerSince >= LINGER_MS;
    if ((this.#flags & FRESH) === 0 || expired || this.#bytes >= LINGER_BYTES) {
      this.#lingered++;
      this.runRound();
      return;
    }
    this.#flags &= ~FRESH;
    this.#nextTurn(() => this.lingerCheck());
  }
}

/** {@link TurnScheduler}'s yes/no states, as bits of one field: a round is scheduled; a flush ran on the current turn; a request came since the last linger check. */
const SCHEDULED = 1;
const RECENT = 2;
const FRESH = 4;

/** The default clock, one function for every scheduler. */
function performanceNow(): number {
  return performance.now();
}
