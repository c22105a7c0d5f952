// Helpers for the sync tests: unique hubs, temp dirs, and waiting on events (never sleeping).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { AsyncQueue, FrameTooLargeError } from '@rhizome/core';
import type { Connection, ConnectOptions, MemoryTransport, PeerInfo, SyncEvent, TopicHash, Transport } from '@rhizome/core';
import type { Database } from '@rhizome/sync';
import { within } from '@rhizome/core/testing';

/** A hub name no other test uses. */
export function uniqueHub(prefix = 'sync'): string {
  return `${prefix}-${randomUUID()}`;
}

/** A temp dir, removed by the returned cleanup. */
export function tempDir(prefix = 'rhizome-sync-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Resolves with the first event of `db` (published after this call) matching `predicate`;
 * rejects after `timeoutMs` with a message naming `what`.
 */
export function nextEvent<T extends SyncEvent>(
  db: Database,
  predicate: (e: SyncEvent) => e is T,
  what: string,
  timeoutMs?: number,
): Promise<T>;
export function nextEvent(db: Database, predicate: (e: SyncEvent) => boolean, what: string, timeoutMs?: number): Promise<SyncEvent>;
export function nextEvent(db: Database, predicate: (e: SyncEvent) => boolean, what: string, timeoutMs = 20_000): Promise<SyncEvent> {
  const sub = db.events.subscribe({ capacity: 1 << 16 });
  return new Promise<SyncEvent>((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.unsubscribe();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    void (async () => {
      for await (const e of sub) {
        if (e.type !== 'lagged' && predicate(e)) {
          clearTimeout(timer);
          sub.unsubscribe();
          resolve(e);
          return;
        }
      }
    })();
  });
}

/** Collects every event of `db` from now on; `stop()` ends the collection. */
export function collectEvents(db: Database): { events: SyncEvent[]; stop: () => void } {
  const sub = db.events.subscribe({ capacity: 1 << 20 });
  const events: SyncEvent[] = [];
  void (async () => {
    for await (const e of sub) events.push(e);
  })();
  return { events, stop: () => sub.unsubscribe() };
}

/** Resolves once `check()` is true, re-checking after every event of `db`; bounded in time. */
export async function until(db: Database, check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  if (check()) return;
  await nextEvent(db, () => check(), what, timeoutMs);
}

/**
 * A Connection wrapper that records what it receives, lets a test inject frames into it (as a
 * relay replaying frames would), and tracks how many sends are in flight at once.
 */
export class TapConnection implements Connection {
  readonly received: Uint8Array[] = [];
  /** Set false to stop keeping copies of received frames (large tests). */
  record = true;
  readonly #inner: Connection;
  readonly #queue = new AsyncQueue<Uint8Array>();

  constructor(inner: Connection) {
    this.#inner = inner;
    void (async () => {
      for await (const frame of inner) {
        if (this.record) this.received.push(frame.slice());
        this.#queue.push(frame);
      }
      this.#queue.end();
    })();
  }

  /** Set to present the connection under another peer id (to test one-session-per-peer). */
  peerIdOverride: string | undefined;
  get peerId(): string { return this.peerIdOverride ?? this.#inner.peerId; }
  get topic(): TopicHash { return this.#inner.topic; }
  get transport(): string { return this.#inner.transport; }
  get closed(): boolean { return this.#inner.closed; }
  /** Most sends that were in flight at the same time. */
  maxInFlight = 0;
  sentFrames = 0;
  #inFlight = 0;
  /** When set, sends above this size fail with ERR_FRAME_TOO_LARGE (a relay with a smaller cap). */
  frameLimit: number | undefined;
  async send(data: Uint8Array): Promise<void> {
    if (this.frameLimit !== undefined && data.length > this.frameLimit) throw new FrameTooLargeError(data.length, this.frameLimit);
    this.#inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.#inFlight);
    try {
      await this.#inner.send(data);
      this.sentFrames++;
    } finally {
      this.#inFlight--;
    }
  }
  receive(): Promise<Uint8Array | null> { return this.#queue.shift(); }
  close(): Promise<void> { return this.#inner.close(); }
  /** As if the relay delivered `frame` on this connection. */
  inject(frame: Uint8Array): void { this.#queue.push(frame.slice()); }
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> { return this.#queue[Symbol.asyncIterator](); }
}

/** A Transport wrapper whose connections are {@link TapConnection}s. */
export class TapTransport implements Transport {
  readonly name = 'tap';
  readonly connections: TapConnection[] = [];
  /** Every connection this transport yields is presented under this peer id, when set. */
  peerIdOverride: string | undefined;
  /** Applied to every connection: see {@link TapConnection.frameLimit}. */
  frameLimit: number | undefined;
  readonly #inner: MemoryTransport;
  constructor(inner: MemoryTransport) { this.#inner = inner; }
  get maxMessageSize(): number { return this.#inner.maxMessageSize; }
  announce(topic: TopicHash): Promise<void> { return this.#inner.announce(topic); }
  lookup(topic: TopicHash): Promise<PeerInfo[]> { return this.#inner.lookup(topic); }
  async connect(topic: TopicHash, options?: ConnectOptions): Promise<AsyncIterable<Connection>> {
    const inner = await this.#inner.connect(topic, options);
    const self = this;
    return (async function* () {
      for await (const conn of inner) {
        const tap = new TapConnection(conn);
        tap.peerIdOverride = self.peerIdOverride;
        tap.frameLimit = self.frameLimit;
        self.connections.push(tap);
        yield tap;
      }
    })();
  }
  disconnect(): Promise<void> { return this.#inner.disconnect(); }
}

/** Resolves once `db` holds `n` nodes, re-checking on each doc update; bounded. */
export function untilSize(db: Database, n: number, timeoutMs = 50_000): Promise<void> {
  if (db.size >= n) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onUpdate = (): void => {
      if (db.size < n) return;
      clearTimeout(timer);
      db.doc.off('update', onUpdate);
      resolve();
    };
    const timer = setTimeout(() => {
      db.doc.off('update', onUpdate);
      reject(new Error(`only ${db.size}/${n} nodes after ${timeoutMs} ms`));
    }, timeoutMs);
    db.doc.on('update', onUpdate);
  });
}

/**
 * Joins `topic` on `transport` and returns its Connection to the peer `peerId` (bounded by
 * `timeoutMs`): for tests that speak the wire protocol to a database by hand.
 */
export async function connectionTo(transport: Transport, topic: TopicHash, peerId: string, signal: AbortSignal, timeoutMs = 10_000): Promise<Connection> {
  const conns = (await transport.connect(topic, { signal }))[Symbol.asyncIterator]();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`no connection to ${peerId} within ${timeoutMs} ms`);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const next = await Promise.race([conns.next(), new Promise<null>((r) => (timer = setTimeout(() => r(null), Math.max(1, deadline - Date.now()))))]).finally(() => clearTimeout(timer));
    if (next !== null && !next.done && next.value.peerId === peerId) return next.value;
  }
}

/** The first Connection the transport yields for `topic`, within `timeoutMs`. */
export async function firstConnection(t: Transport, topic: Uint8Array, timeoutMs: number): Promise<Connection> {
  const it = (await t.connect(topic))[Symbol.asyncIterator]();
  const r = await within(timeoutMs, 'a connection', it.next());
  if (r.done) throw new Error('iterable ended');
  return r.value;
}
