import type { Connection as Libp2pConnection, Stream } from '@libp2p/interface';

/** libp2p's ping protocol, which every Rhizome node serves (`@libp2p/ping`). */
export const PING_PROTOCOL = '/ipfs/ping/1.0.0';
/** Bytes of one ping (the protocol echoes them). */
const PING_LENGTH = 32;

/** What a {@link LinkMonitor} needs. */
export interface LinkMonitorOptions {
  /** The node's open libp2p connections right now. */
  links: () => Libp2pConnection[];
  /**
   * A count that grows whenever the peer is heard from over this link by something other than
   * the monitor (Rhizome sessions' received bytes), or undefined when nothing but the monitor
   * watches the link. A link whose count moved since the previous check is alive and is not pinged.
   */
  heard: (link: Libp2pConnection) => number | undefined;
  /** Bound on one ping (open the stream, the echo); a ping that fails or takes longer aborts the link. */
  timeoutMs: number;
  /** Ping every link at every check, heard or not (libp2p's own connection monitor does this). */
  pingHeardLinks?: boolean;
  /** Called when a ping failed and the link was aborted (for logs and tests). */
  onDead?: (link: Libp2pConnection, error: Error) => void;
}

/**
 * Finds dead libp2p connections, like libp2p's connection monitor (which this replaces in Rhizome
 * nodes), but without the pings that carry no information: libp2p's monitor opens a new ping
 * stream on every connection every 10 s from each side, whether or not the connection is busy.
 * In a topic of P replicas that is P/5 new streams per second per replica (stream open,
 * multistream-select, 32 bytes each way, close: each a noise-encrypted yamux frame plus the
 * window updates), most of an idle replica's CPU next to its Rhizome sessions' own health pings
 * every 5 s (BENCHMARKS.md § DHT join, session 7). Here a link over which a Rhizome session
 * received anything since the previous check is alive by that measure and is not pinged; a link
 * without a session (a bootstrap node, a DHT-only peer) or whose sessions went silent for a whole
 * interval is pinged as before, and aborted when the ping fails or times out. So a dead link is
 * still found within two intervals plus the ping timeout (libp2p: one interval plus the timeout).
 */
export class LinkMonitor {
  readonly #o: LinkMonitorOptions;
  /** The heard-count of each link at the previous check. */
  readonly #seen = new WeakMap<Libp2pConnection, number>();
  readonly #inFlight = new WeakSet<Libp2pConnection>();
  #timer: ReturnType<typeof setInterval> | null = null;
  readonly #controller = new AbortController();
  /** Pings sent so far (for tests and status). */
  pings = 0;
  /** Checks that skipped a link because it was heard from (for tests and status). */
  skipped = 0;

  constructor(options: LinkMonitorOptions) {
    this.#o = options;
  }

  /** Checks every `intervalMs` until {@link LinkMonitor.stop}. */
  start(intervalMs: number): void {
    if (this.#timer !== null || this.#controller.signal.aborted) return;
    this.#timer = setInterval(() => void this.check(), intervalMs);
    this.#timer.unref?.();
  }

  /** Stops checking and abandons pings in flight. Idempotent. */
  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#controller.abort();
  }

  /**
   * One round: pings each open link that was not heard from since the previous round (and has no
   * ping in flight); resolves when those pings ended. Never rejects.
   */
  async check(): Promise<void> {
    if (this.#controller.signal.aborted) return;
    const pings: Array<Promise<void>> = [];
    for (const link of this.#o.links()) {
      if (link.status !== 'open' || this.#inFlight.has(link)) continue;
      const heard = this.#o.heard(link);
      const before = this.#seen.get(link);
      if (heard !== undefined) this.#seen.set(link, heard);
      if (!this.#o.pingHeardLinks && heard !== undefined && before !== undefined && heard !== before) {
        this.skipped++;
        continue;
      }
      pings.push(this.#ping(link));
    }
    await Promise.all(pings);
  }

  async #ping(link: Libp2pConnection): Promise<void> {
    this.#inFlight.add(link);
    this.pings++;
    const signal = AbortSignal.any([AbortSignal.timeout(this.#o.timeoutMs), this.#controller.signal]);
    let stream: Stream | undefined;
    try {
      stream = await link.newStream(PING_PROTOCOL, { signal, runOnLimitedConnection: true });
      const start = Date.now();
      await echo(stream, signal);
      link.rtt = Date.now() - start;
      await stream.close({ signal });
    } catch (error) {
      const err = error instanceof Error ? error : new Error(String(error));
      stream?.abort(err);
      if (this.#controller.signal.aborted || link.status !== 'open') return;
      // The peer answered multistream-select without the ping protocol: it is alive.
      if (err.name === 'UnsupportedProtocolError') return;
      link.abort(err);
      this.#o.onDead?.(link, err);
    } finally {
      this.#inFlight.delete(link);
    }
  }
}

/** Sends 32 random bytes and resolves when the same 32 come back; rejects on a mismatch, the stream's end, or `signal`. */
function echo(stream: Stream, signal: AbortSignal): Promise<void> {
  const sent = crypto.getRandomValues(new Uint8Array(PING_LENGTH));
  return new Promise<void>((resolve, reject) => {
    const got = new Uint8Array(PING_LENGTH);
    let n = 0;
    const done = (error?: Error): void => {
      stream.removeEventListener('message', onMessage);
      stream.removeEventListener('close', onClose);
      signal.removeEventListener('abort', onAbort);
      if (error) reject(error);
      else resolve();
    };
    const onMessage = (event: { data: { subarray(): Uint8Array } }): void => {
      const chunk = event.data.subarray();
      const take = Math.min(chunk.length, PING_LENGTH - n);
      got.set(chunk.subarray(0, take), n);
      n += take;
      if (n < PING_LENGTH) return;
      done(got.every((b, i) => b === sent[i]) ? undefined : new Error('ping echo did not match'));
    };
    const onClose = (): void => done(new Error('ping stream closed before the echo'));
    const onAbort = (): void => done(signal.reason instanceof Error ? signal.reason : new Error('ping timed out'));
    if (signal.aborted) return onAbort();
    stream.addEventListener('message', onMessage);
    stream.addEventListener('close', onClose);
    signal.addEventListener('abort', onAbort, { once: true });
    stream.send(sent);
  });
}
