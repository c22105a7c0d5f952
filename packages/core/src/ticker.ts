/**
 * Shared interval timers: one per period (and keep-alive choice) for every member of the process,
 * however many databases it holds open (a timer with its closure is ~0.25 KiB per database).
 * Used by the sync layer's health monitors and awareness checks (sync/src/monitor.ts, presence.ts)
 * and the relay transport's liveness check (transport-relay/src/transport.ts).
 *
 * A round ticks at most {@link TICK_CHUNK} members per turn of the event loop and goes on with the
 * rest on the next turn. Ticking every database of a process in one macrotask would queue every
 * message of the process at once (5,000 replicas with 4 peers: 20,000 pings, each with its frame,
 * before the first is sealed and sent); a scavenge during that macrotask then promotes all of
 * them to the old generation, where they die (BENCHMARKS.md § Issue 12, Session 9 (cliconn)). In
 * chunks, a chunk's messages are sealed and sent (the databases' flushes run on the next turn)
 * before the next chunk queues more, and the event loop stays responsive during a round.
 */

/** A member of a shared ticker: ticked once per period; reports its own errors. */
export interface Tickable {
  safeTick(): void;
}

interface Ticker {
  timer: ReturnType<typeof setInterval>;
  members: Set<Tickable>;
  /** The members of the round in progress and the next to tick; null between rounds. */
  round: Tickable[] | null;
  next: number;
}

/** Members ticked per turn of the event loop (see the module description). */
export const TICK_CHUNK = 64;

const tickers = new Map<string, Ticker>();

/** The platform's next-turn runner: `setImmediate` in Node, a zero timeout elsewhere. */
const nextTurn: (fn: () => void) => void =
  typeof (globalThis as { setImmediate?: unknown }).setImmediate === 'function'
    ? (fn) => (globalThis as unknown as { setImmediate: (fn: () => void) => { unref?: () => void } }).setImmediate(fn).unref?.()
    : (fn) => {
        setTimeout(fn, 0);
      };

function startRound(ticker: Ticker): void {
  // A round still in progress (a slow process) is not restarted: its members are still being ticked.
  if (ticker.round !== null) return;
  ticker.round = [...ticker.members];
  ticker.next = 0;
  tickChunk(ticker);
}

function tickChunk(ticker: Ticker): void {
  const round = ticker.round;
  if (round === null) return;
  const end = Math.min(round.length, ticker.next + TICK_CHUNK);
  for (let i = ticker.next; i < end; i++) {
    const m = round[i] as Tickable;
    // A member that left during the round (its database closed) is skipped.
    if (!ticker.members.has(m)) continue;
    try {
      m.safeTick();
    } catch (error) {
      // A member reports its own errors; one that throws anyway (a bug) must not end the round
      // here: the round would never finish and every later one would be skipped, for every
      // member of the period (health, awareness and liveness checks of the whole process). Its
      // error still reaches the process, as an uncaught exception, as it did from the timer.
      queueMicrotask(() => {
        throw error;
      });
    }
  }
  ticker.next = end;
  if (end >= round.length) {
    ticker.round = null;
    return;
  }
  nextTurn(() => tickChunk(ticker));
}

const keyOf = (periodMs: number, keepAlive: boolean): string => `${periodMs}${keepAlive ? '+' : ''}`;

/**
 * Ticks `member` every `periodMs` on the shared timer of that period. `keepAlive`: the timer keeps
 * the process alive while it has members (as a plain `setInterval` would); otherwise it never does.
 */
export function joinTicker(member: Tickable, periodMs: number, keepAlive = false): void {
  const key = keyOf(periodMs, keepAlive);
  let ticker = tickers.get(key);
  if (ticker === undefined) {
    const t: Ticker = { timer: undefined as unknown as ReturnType<typeof setInterval>, members: new Set(), round: null, next: 0 };
    t.timer = setInterval(() => startRound(t), periodMs);
    if (!keepAlive) (t.timer as { unref?: () => void }).unref?.();
    ticker = t;
    tickers.set(key, ticker);
  }
  ticker.members.add(member);
}

/** Stops {@link joinTicker}; the period's timer is cleared with its last member. */
export function leaveTicker(member: Tickable, periodMs: number, keepAlive = false): void {
  const key = keyOf(periodMs, keepAlive);
  const ticker = tickers.get(key);
  if (ticker === undefined || !ticker.members.delete(member) || ticker.members.size > 0) return;
  clearInterval(ticker.timer);
  ticker.round = null;
  tickers.delete(key);
}
