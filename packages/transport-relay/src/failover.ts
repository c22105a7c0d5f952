/**
 * Which relay a {@link RelayTransport} talks to when it was given several (`relayUrl: [...]`):
 * it sticks to one as long as sessions with it come up, moves to the next in the list when it
 * is refused or lost, and backs off per round through the list (so a dead relay costs one
 * short delay, while a list of dead relays is retried ever more slowly), with jitter.
 */

/** Backoff of {@link RelayRotation.delayMs}. */
export interface BackoffPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
  factor: number;
}

/**
 * The wait before the next attempt after `round` full rounds of failures: exponential in the
 * round, capped, drawn from [d/2, d]. (A transport of one relay counts its failures itself and
 * makes no {@link RelayRotation}: ARCHITECTURE § Memory of an idle replica.)
 */
export function backoffDelayMs(policy: BackoffPolicy, round: number, random: () => number = Math.random): number {
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** round);
  return base / 2 + random() * (base / 2);
}

/** The list of relays, the current one, and the retry bookkeeping. */
export class RelayRotation {
  /** Normalized relay URLs, in the order given (the first is preferred at start). */
  readonly urls: readonly string[];
  #index = 0;
  /** Failed attempts since the last session that came up. */
  #failures = 0;
  /** Relays in a row that refused with a code retrying cannot fix. */
  #fatalInRow = 0;

  constructor(urls: readonly string[]) {
    if (urls.length === 0) throw new RangeError('at least one relay URL');
    this.urls = urls;
  }

  /** The relay in use (or tried next). */
  get current(): string {
    return this.urls[this.#index]!;
  }

  /** A session came up on the current relay: stay with it. */
  succeeded(): void {
    this.#failures = 0;
    this.#fatalInRow = 0;
  }

  /**
   * The current relay was refused, unreachable or lost: move to the next one. Returns how long
   * to wait before trying it (exponential in the number of full rounds, drawn from [d/2, d]).
   */
  failed(policy: BackoffPolicy, random: () => number = Math.random): number {
    const round = Math.floor(this.#failures / this.urls.length);
    this.#failures++;
    if (this.urls.length > 1) this.#index = (this.#index + 1) % this.urls.length;
    return backoffDelayMs(policy, round, random);
  }

  /**
   * The current relay refused with a code that retrying it cannot fix (bad token, protocol
   * version): true once every relay in the list refused so in a row — then give up.
   */
  refusedForGood(): boolean {
    this.#fatalInRow++;
    return this.#fatalInRow >= this.urls.length;
  }
}
