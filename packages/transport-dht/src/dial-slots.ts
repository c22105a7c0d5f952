import { AbortError } from '@rhizome/core';

/**
 * A bound on new libp2p connections a node opens at once for its topics. A joiner's first lookup
 * lists every provider of the topic (31 in the 32-replica benchmark): dialing them all at once
 * makes every noise handshake, identify exchange and topic HELLO share one CPU, so the first
 * Connection arrives when most of them do (BENCHMARKS.md § DHT join). With a few slots the
 * first ones finish in about one dial's time and the rest follow as slots free.
 *
 * A slot counts for at most `holdMs`: a dial to a stale record (a peer gone for good, a host that
 * drops SYNs) may hang until the handshake timeout, and must not hold up the live ones behind it.
 * A waiter whose peer got a libp2p link meanwhile (a DHT query or the peer itself opened one)
 * goes at once without a slot: its HELLO is one stream on that link. Waiters start in the order
 * they came, and nothing here reads the clock except the hold timers.
 */
export class DialSlots {
  readonly #max: number;
  readonly #holdMs: number;
  #used = 0;
  /** Re-checks of waiting dials, in arrival order; each returns true once it has gone. */
  readonly #waiters = new Set<() => boolean>();

  constructor(max: number, holdMs: number) {
    this.#max = max;
    this.#holdMs = holdMs;
  }

  /** Slots in use (for tests and status). */
  get used(): number {
    return this.#used;
  }

  /** Dials waiting for a slot. */
  get waiting(): number {
    return this.#waiters.size;
  }

  /**
   * Resolves with a release function once a slot is free or `linked()` is true (then the release
   * does nothing); rejects with AbortError when `signal` aborts first. Release is idempotent.
   */
  acquire(linked: () => boolean, signal: AbortSignal): Promise<() => void> {
    if (signal.aborted) return Promise.reject(new AbortError());
    if (linked()) return Promise.resolve(noop);
    if (this.#waiters.size === 0 && this.#used < this.#max) return Promise.resolve(this.#take());
    return new Promise<() => void>((resolve, reject) => {
      const check = (): boolean => {
        if (linked()) {
          done();
          resolve(noop);
          return true;
        }
        if (this.#used < this.#max) {
          done();
          resolve(this.#take());
          return true;
        }
        return false;
      };
      const onAbort = (): void => {
        done();
        reject(new AbortError());
        this.wake();
      };
      const done = (): void => {
        this.#waiters.delete(check);
        signal.removeEventListener('abort', onAbort);
      };
      this.#waiters.add(check);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Lets waiting dials re-check: a slot was freed, or a libp2p link opened. */
  wake(): void {
    for (const check of [...this.#waiters]) {
      // In arrival order: a waiter that cannot go yet keeps its place; later ones may still go
      // when their peer is linked.
      check();
    }
  }

  #take(): () => void {
    this.#used++;
    let held = true;
    const release = (): void => {
      if (!held) return;
      held = false;
      clearTimeout(timer);
      this.#used--;
      this.wake();
    };
    const timer = setTimeout(release, this.#holdMs);
    timer.unref?.();
    return release;
  }
}

function noop(): void {}
