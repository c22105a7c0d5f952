import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import {
  ClosedError,
  DEFAULT_TIMEOUT_MS,
  DisabledTransport,
  InvalidArgumentError,
  InvalidConfigError,
  SyncBroadcaster,
  TimeoutError,
  createTransport,
  deriveTopic,
} from '@rhizome/core';
import type { Connection, DocStore, JsonValue, PeerInfo, SyncEvent, TopicHash, Transport, TransportConfig } from '@rhizome/core';
import { openStore } from '@rhizome/store-sqlite';
import { NodeModel } from './nodes.js';
import { DocPersistence, PERSISTENCE_ORIGIN } from './persistence.js';
import type { PersistenceOptions } from './persistence.js';
import { FrameSealer, SEAL_OVERHEAD, keyMaterial } from './seal.js';
import { DEFAULT_FLUSH_TIMEOUT_MS, DeliveryTimeoutError } from './delivery.js';
import { AWARENESS_DISCONNECT_ORIGIN, PeerSession } from './session.js';
import type { PeerStats, SessionHost } from './session.js';
import { assertNodeId, copyNodeData } from './validate.js';
import { CHUNK_HEADER_LENGTH } from './wire.js';

/** Largest sealed frame the sync layer sends, even when the transport takes more. */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;
/** Default bound on one reassembled message (and so on reassembly memory per connection). */
export const DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024;
/** Default bound on queued outbound update bytes per peer before they collapse into one diff. */
export const DEFAULT_MAX_QUEUED_BYTES = 16 * 1024 * 1024;
/** Smallest frame the sync layer can work with: the seal, a chunk header and some payload. */
export const MIN_FRAME_BYTES = SEAL_OVERHEAD + CHUNK_HEADER_LENGTH + 64;
/** How long `close()` waits for queued frames to leave before it closes the connections. */
export const CLOSE_DRAIN_MS = 2000;

/** Options of {@link openDatabase}. */
export interface DatabaseOptions {
  /** The database id: every replica of one database uses the same id. Its topic is `deriveTopic(id)`. */
  id: string;
  /** SQLite file (created if missing); absent or `':memory:'` keeps the data in memory. */
  path?: string;
  /**
   * The network: a {@link Transport} (the caller keeps ownership and disconnects it), or a
   * configuration for `createTransport` (the database owns that transport and disconnects it on
   * close). Default: a disabled transport (local only).
   */
  transport?: Transport | Partial<TransportConfig>;
  /**
   * Key material for sealing frames, instead of the database id. Replicas with different
   * secrets cannot read each other's frames.
   */
  secret?: string | Uint8Array;
  /** Sync limits (advanced). */
  limits?: {
    /** Largest sealed frame to send (capped by the transport's `maxMessageSize`). Default 1 MiB. */
    maxFrameBytes?: number;
    /** Largest message a peer may send us (reassembled). Default 256 MiB. */
    maxMessageBytes?: number;
    /** Queued outbound update bytes per peer before they collapse into one diff. Default 16 MiB. */
    maxQueuedBytes?: number;
  };
  /** Compaction thresholds of the persisted update log. */
  persistence?: Pick<PersistenceOptions, 'compactAfterUpdates' | 'compactAfterBytes'>;
}

/** Options of {@link Database.whenSynced}. */
export interface WhenSyncedOptions {
  /** Reject with `ERR_TIMEOUT` after this long. Default 30000 ms. */
  timeoutMs?: number;
  /** Also wait until at least this many peers are connected (default 0). */
  minPeers?: number;
  /** Reject with the signal's reason when aborted. */
  signal?: AbortSignal;
}

/** Options of {@link Database.whenDelivered}. */
export interface WhenDeliveredOptions {
  /** How many peers must acknowledge (default 1). */
  minPeers?: number;
  /** Reject with `ERR_TIMEOUT` after this long. Default 30000 ms. */
  timeoutMs?: number;
  /** Reject with the signal's reason when aborted. */
  signal?: AbortSignal;
}

/** Options of {@link Database.close}. */
export interface CloseOptions {
  /**
   * How long to wait, at most, for the connected peers to acknowledge every local change before
   * leaving (default 2000 ms; 0 leaves at once, dropping what is still queued). Changes not
   * acknowledged in time stay in the file and sync on the next open.
   */
  flushTimeoutMs?: number;
}

/** Traffic counters of a database: totals since open plus one entry per connected peer. */
export interface DatabaseStats {
  framesSent: number;
  framesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  decryptErrors: number;
  /** Outbound queues that overflowed into a catch-up diff. */
  collapses: number;
  peers: PeerStats[];
}

interface SyncWaiter {
  minPeers: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** Waits for `promise`, but no longer than `ms`. */
async function within(ms: number, promise: Promise<unknown>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([promise.then(() => undefined, () => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

function isTransport(value: object): value is Transport {
  return typeof (value as Partial<Transport>).connect === 'function' && typeof (value as Partial<Transport>).disconnect === 'function';
}

function positiveInt(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new InvalidConfigError(field, 'must be a positive integer');
  return value;
}

/**
 * A Rhizome database: a Yjs document of nodes, persisted in SQLite and reconciled with every
 * peer the transport finds on the database's topic, sealed end to end.
 *
 * Nodes are JSON objects keyed by id. `put` merges fields; concurrent puts of different fields of
 * one node both survive; concurrent puts of one field resolve the Yjs way (one wins, everywhere).
 * A put concurrent with a delete wins. Everything that leaves the database is sealed.
 *
 * @example
 * ```ts
 * const db = await openDatabase({ id, path: 'notes.db', transport: { mode: 'relay', relayUrl } });
 * db.put('n1', { title: 'Hello' });
 * for await (const e of db.events.subscribe()) if (e.type === 'node-upsert') console.log(e.id, e.data);
 * ```
 */
export class Database {
  /** The database id. */
  readonly id: string;
  /** Its public rendezvous topic, `deriveTopic(id)`. */
  readonly topic: TopicHash;
  /** The Yjs document (apps may bind editors to it; the node API uses the `nodes` and `fields` maps). */
  readonly doc: Y.Doc;
  /** Everything that happens: node changes (local and remote), peers, sync, errors. */
  readonly events = new SyncBroadcaster<SyncEvent>();
  /** y-protocols awareness (presence), shared with every peer. */
  readonly awareness: awarenessProtocol.Awareness;
  /** The transport this database syncs over. */
  readonly transport: Transport;

  readonly #model: NodeModel;
  readonly #store: DocStore;
  readonly #persistence: DocPersistence;
  readonly #ownsTransport: boolean;
  readonly #host: SessionHost;
  readonly #sessions = new Map<string, PeerSession>();
  readonly #ended = new WeakSet<PeerSession>();
  readonly #runs = new Set<Promise<void>>();
  /** Called with each new session (pending {@link whenDelivered} calls ask it to acknowledge). */
  readonly #onAttach = new Set<(session: PeerSession) => void>();
  /** Called with `ERR_CLOSED` when the database closes (pending {@link whenDelivered} calls). */
  readonly #onClose = new Set<(error: Error) => void>();
  readonly #abort = new AbortController();
  readonly #totals = { framesSent: 0, framesReceived: 0, bytesSent: 0, bytesReceived: 0, decryptErrors: 0, collapses: 0 };
  #waiters: SyncWaiter[] = [];
  #closed = false;
  #closing: Promise<void> | null = null;
  #network: Promise<void> = Promise.resolve();

  /** @internal Use {@link openDatabase}. */
  constructor(
    id: string,
    store: DocStore,
    transport: Transport,
    ownsTransport: boolean,
    sealer: FrameSealer,
    limits: { maxFrameBytes: number; maxMessageBytes: number; maxQueuedBytes: number },
    persistenceOptions: PersistenceOptions,
  ) {
    this.id = id;
    this.topic = deriveTopic(id);
    this.doc = new Y.Doc();
    this.#store = store;
    this.transport = transport;
    this.#ownsTransport = ownsTransport;
    this.#persistence = new DocPersistence(store, id, this.doc, {
      ...persistenceOptions,
      onError: (error) => this.#report(error),
    });
    this.#persistence.load();
    this.#model = new NodeModel(this.doc);
    this.awareness = new awarenessProtocol.Awareness(this.doc);
    const transportMax = transport.maxMessageSize > 0 ? transport.maxMessageSize : limits.maxFrameBytes;
    this.#host = {
      doc: this.doc,
      awareness: this.awareness,
      sealer,
      maxFrameBytes: Math.min(transportMax, limits.maxFrameBytes),
      minFrameBytes: MIN_FRAME_BYTES,
      maxMessageBytes: limits.maxMessageBytes,
      maxQueuedBytes: limits.maxQueuedBytes,
      reportError: (error) => this.#report(error),
      onSynced: (session) => {
        this.events.publish({ type: 'synced', peerId: session.peerId });
        this.#checkWaiters();
      },
      onForeign: () => this.#checkWaiters(),
      onClosed: (session, reason) => this.#onSessionClosed(session, reason),
    };
    this.doc.on('update', this.#onUpdate);
    this.doc.on('afterTransaction', this.#onTransaction);
    this.awareness.on('update', this.#onAwareness);
  }

  // ---- the node API -------------------------------------------------------------------------

  /**
   * Upserts node `nodeId`: sets the given fields, keeps the others. Data must be a plain object
   * of JSON values (`ERR_INVALID_ARGUMENT` otherwise). In SQLite before the next macrotask.
   *
   * Each call is one Yjs transaction. For a bulk load, wrap many calls in one transaction: one
   * update, one SQLite row, one message to each peer.
   *
   * @example
   * ```ts
   * db.doc.transact(() => {
   *   for (const row of rows) db.put(row.id, row.data);
   * });
   * ```
   */
  put(nodeId: string, data: Record<string, JsonValue>): void {
    this.#assertOpen();
    assertNodeId(nodeId);
    const copy = copyNodeData(data);
    this.#model.put(nodeId, copy, this);
  }

  /** A copy of the node's fields, or `undefined` if there is no such node. */
  get(nodeId: string): Record<string, JsonValue> | undefined {
    this.#assertOpen();
    assertNodeId(nodeId);
    return this.#model.get(nodeId);
  }

  /** Deletes the node (a no-op if it does not exist). In SQLite before the next macrotask. */
  delete(nodeId: string): void {
    this.#assertOpen();
    assertNodeId(nodeId);
    this.#model.delete(nodeId, this);
  }

  /** Every node, sorted by id. */
  list(): Array<{ id: string; data: Record<string, JsonValue> }> {
    this.#assertOpen();
    return this.#model.list();
  }

  /** Number of nodes. */
  get size(): number {
    return this.#model.size;
  }

  /** The peers connected on the topic now. */
  peers(): PeerInfo[] {
    return [...this.#sessions.values()].map((s) => ({ peerId: s.peerId, addresses: [] }));
  }

  /** Traffic counters (wire bytes of sealed frames). */
  stats(): DatabaseStats {
    const total = { ...this.#totals };
    const peers: PeerStats[] = [];
    for (const s of this.#sessions.values()) {
      total.framesSent += s.stats.framesSent;
      total.framesReceived += s.stats.framesReceived;
      total.bytesSent += s.stats.bytesSent;
      total.bytesReceived += s.stats.bytesReceived;
      total.decryptErrors += s.stats.decryptErrors;
      total.collapses += s.stats.collapses;
      peers.push({ peerId: s.peerId, synced: s.synced, ...s.stats, queued: s.queued, maxFrameBytes: s.maxFrameBytes });
    }
    return { ...total, peers };
  }

  /** Writes pending updates to the store now (they are written at the end of the tick anyway). */
  flush(): void {
    this.#assertOpen();
    this.#persistence.flush();
  }

  /** Replaces the persisted update log by one snapshot. */
  compact(): void {
    this.#assertOpen();
    this.#persistence.compact();
  }

  /**
   * Resolves when every connected peer has completed its first full exchange (immediately when
   * no peer is connected, unless `minPeers` asks to wait for some). Rejects with `ERR_TIMEOUT`
   * after `timeoutMs` (default 30 s) and with `ERR_CLOSED` if the database closes first.
   */
  whenSynced(options: WhenSyncedOptions = {}): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('database'));
    const minPeers = options.minPeers ?? 0;
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isInteger(minPeers) || minPeers < 0) return Promise.reject(new InvalidArgumentError('minPeers must be a non-negative integer'));
    if (typeof timeoutMs !== 'number' || !(timeoutMs > 0)) return Promise.reject(new InvalidArgumentError('timeoutMs must be a positive number'));
    if (this.#allSynced(minPeers)) return Promise.resolve();
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => done(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      const timer = setTimeout(() => {
        const pending = [...this.#sessions.values()].filter((s) => !s.synced).map((s) => s.peerId);
        done(new TimeoutError(`not synced after ${timeoutMs} ms (${this.#sessions.size} peers, waiting for ${pending.length ? pending.join(', ') : `${minPeers} peers`})`));
      }, timeoutMs);
      const waiter: SyncWaiter = {
        minPeers,
        resolve: () => done(),
        reject: (error) => done(error),
      };
      const done = (error?: Error): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        if (error) reject(error);
        else resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /**
   * Resolves once at least `minPeers` (default 1) peers have acknowledged everything this replica
   * held when it was called: its own writes and what it got from others. A peer acknowledges by
   * answering a sync request sent behind everything queued for it, so the changes are applied
   * there (and, on a peer with a file, in its SQLite). Peers that connect while it waits count
   * too. Resolves with the number of peers that acknowledged; rejects after `timeoutMs` (default
   * 30 s) with a {@link DeliveryTimeoutError} (`ERR_TIMEOUT`) saying how many did, and with
   * `ERR_CLOSED` if the database closes.
   *
   * @example
   * ```ts
   * db.put('note-1', { title: 'Hello' });
   * await db.whenDelivered({ minPeers: 1, timeoutMs: 10_000 }); // a peer has note-1
   * await db.close();
   * ```
   */
  whenDelivered(options: WhenDeliveredOptions = {}): Promise<number> {
    if (this.#closed) return Promise.reject(new ClosedError('database'));
    const minPeers = options.minPeers ?? 1;
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isInteger(minPeers) || minPeers < 0) return Promise.reject(new InvalidArgumentError('minPeers must be a non-negative integer'));
    if (typeof timeoutMs !== 'number' || !(timeoutMs > 0)) return Promise.reject(new InvalidArgumentError('timeoutMs must be a positive number'));
    if (minPeers === 0) return Promise.resolve(0);
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    return new Promise<number>((resolve, reject) => {
      const acked = new Set<string>();
      let finished = false;
      const onAbort = (): void => done(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      const timer = setTimeout(() => {
        done(new DeliveryTimeoutError(acked.size, minPeers, timeoutMs, this.#sessions.size));
      }, timeoutMs);
      const ask = (session: PeerSession): void => {
        void session.acknowledge().then((ok) => {
          if (!ok || finished) return;
          acked.add(session.peerId);
          if (acked.size >= minPeers) done();
        });
      };
      const onClose = (error: Error): void => done(error);
      const done = (error?: Error): void => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#onAttach.delete(ask);
        this.#onClose.delete(onClose);
        if (error) reject(error);
        else resolve(acked.size);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#onClose.add(onClose);
      this.#onAttach.add(ask);
      for (const session of this.#sessions.values()) ask(session);
    });
  }

  /**
   * Flushes to the store, tells peers this replica's presence is gone, waits (at most
   * `flushTimeoutMs`, default 2000 ms) for every connected peer to acknowledge every change
   * queued for it, leaves the topic, and releases the store (and the transport, if the database
   * created it). Idempotent (later calls return the first call's promise); later calls of the
   * API throw `ERR_CLOSED`.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.#closing) return this.#closing;
    const flushTimeoutMs = options.flushTimeoutMs ?? DEFAULT_FLUSH_TIMEOUT_MS;
    if (typeof flushTimeoutMs !== 'number' || !(flushTimeoutMs >= 0) || !Number.isFinite(flushTimeoutMs)) {
      return Promise.reject(new InvalidArgumentError('flushTimeoutMs must be a non-negative number'));
    }
    this.#closing = this.#close(flushTimeoutMs);
    return this.#closing;
  }

  async #close(flushTimeoutMs: number): Promise<void> {
    this.#closed = true;
    let firstError: unknown;
    try {
      this.#persistence.flush();
    } catch (error) {
      firstError = error;
    }
    awarenessProtocol.removeAwarenessStates(this.awareness, [this.doc.clientID], 'local');
    // Peers without the key never answer: they are not waited for.
    const peers = [...this.#sessions.values()].filter((s) => !s.foreign);
    if (flushTimeoutMs > 0) await within(flushTimeoutMs, Promise.all(peers.map((s) => s.acknowledge())));
    this.#abort.abort();
    await Promise.all([...this.#sessions.values()].map((s) => s.close().catch(() => undefined)));
    if (this.#ownsTransport) await this.transport.disconnect().catch(() => undefined);
    // Sessions end once their connections report the close (peer-disconnected events go out).
    await within(CLOSE_DRAIN_MS, Promise.all([this.#network, ...this.#runs]));
    for (const w of [...this.#waiters]) w.reject(new ClosedError('database'));
    for (const onClose of [...this.#onClose]) onClose(new ClosedError('database'));
    this.doc.off('update', this.#onUpdate);
    this.doc.off('afterTransaction', this.#onTransaction);
    this.awareness.off('update', this.#onAwareness);
    this.awareness.destroy();
    try {
      this.#persistence.close();
    } catch (error) {
      firstError ??= error;
    }
    try {
      this.#store.close();
    } catch (error) {
      firstError ??= error;
    }
    this.events.close();
    if (firstError !== undefined) throw firstError;
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  // ---- network ------------------------------------------------------------------------------

  /**
   * @internal Joins the topic and runs a session per connection until closed. The join starts
   * on the next macrotask, so a subscription made right after `await openDatabase()` sees every
   * network event, including the first `peer-connected` and an early `error`.
   */
  start(): void {
    this.#network = this.#run();
  }

  async #run(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (this.#closed) return;
    const { signal } = this.#abort;
    try {
      const connections = await this.transport.connect(this.topic, { signal });
      for await (const conn of connections) {
        if (this.#closed) {
          void conn.close().catch(() => undefined);
          continue;
        }
        this.#attach(conn);
      }
    } catch (error) {
      if (!this.#closed) this.#report(error);
    }
  }

  #attach(conn: Connection): void {
    const previous = this.#sessions.get(conn.peerId);
    if (previous) {
      // One session per peer: a reconnect replaces the old connection.
      this.#sessions.delete(conn.peerId);
      this.#onSessionClosed(previous, 'replaced by a new connection');
      void previous.close().catch(() => undefined);
    }
    const session = new PeerSession(conn, this.#host);
    this.#sessions.set(conn.peerId, session);
    this.events.publish({ type: 'peer-connected', peerId: conn.peerId, topic: this.topic });
    for (const onAttach of [...this.#onAttach]) onAttach(session);
    const running = session.run();
    this.#runs.add(running);
    void running.finally(() => this.#runs.delete(running));
  }

  #onSessionClosed(session: PeerSession, reason?: string): void {
    if (this.#ended.has(session)) return;
    this.#ended.add(session);
    if (this.#sessions.get(session.peerId) === session) this.#sessions.delete(session.peerId);
    const totals = this.#totals;
    for (const k of Object.keys(totals) as Array<keyof typeof totals>) totals[k] += session.stats[k];
    if (session.awarenessClients.size > 0) {
      awarenessProtocol.removeAwarenessStates(this.awareness, [...session.awarenessClients], AWARENESS_DISCONNECT_ORIGIN);
    }
    this.events.publish(
      reason === undefined
        ? { type: 'peer-disconnected', peerId: session.peerId, topic: this.topic }
        : { type: 'peer-disconnected', peerId: session.peerId, topic: this.topic, reason },
    );
    this.#checkWaiters();
  }

  // ---- doc and awareness hooks --------------------------------------------------------------

  readonly #onUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === PERSISTENCE_ORIGIN) return;
    for (const session of this.#sessions.values()) {
      // Never echo an update to the peer it came from.
      if (session !== origin) session.sendUpdate(update);
    }
  };

  readonly #onTransaction = (tr: Y.Transaction): void => {
    if (tr.origin === PERSISTENCE_ORIGIN || this.events.subscriberCount === 0) return;
    const origin = tr.local ? 'local' : 'remote';
    for (const change of this.#model.changes(tr)) {
      if (change.deleted) {
        this.events.publish({ type: 'node-delete', id: change.id, origin });
      } else {
        const data = this.#model.get(change.id);
        if (data) this.events.publish({ type: 'node-upsert', id: change.id, data, origin });
      }
    }
  };

  readonly #onAwareness = (
    changes: { added: number[]; updated: number[]; removed: number[] },
    origin: unknown,
  ): void => {
    if (origin instanceof PeerSession) {
      for (const id of [...changes.added, ...changes.updated]) origin.awarenessClients.add(id);
      for (const id of changes.removed) origin.awarenessClients.delete(id);
    }
    // Removals we make because a peer left are local bookkeeping, not news for other peers.
    if (origin === AWARENESS_DISCONNECT_ORIGIN || this.#sessions.size === 0) return;
    const clients = [...changes.added, ...changes.updated, ...changes.removed];
    if (clients.length === 0) return;
    const update = awarenessProtocol.encodeAwarenessUpdate(this.awareness, clients);
    for (const session of this.#sessions.values()) if (session !== origin) session.sendAwareness(update);
  };

  // ---- helpers ------------------------------------------------------------------------------

  #allSynced(minPeers: number): boolean {
    // Peers without the key (every frame failed to open) never finish an exchange: waiting for
    // them would let any stranger on the topic stall whenSynced. They count for nothing.
    let peers = 0;
    for (const s of this.#sessions.values()) {
      if (s.foreign) continue;
      if (!s.synced) return false;
      peers++;
    }
    return peers >= minPeers;
  }

  #checkWaiters(): void {
    for (const w of [...this.#waiters]) if (this.#allSynced(w.minPeers)) w.resolve();
  }

  #report(error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    this.events.publish({ type: 'error', error: err });
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('database');
  }
}

/**
 * Opens (or creates) a database: loads its state from `path`, joins its topic on the transport,
 * and syncs with every peer found there. Options are validated up front (`ERR_INVALID_CONFIG`
 * naming the field). Network trouble never fails the open: it is reported on `db.events`.
 *
 * @example
 * ```ts
 * import { openDatabase } from '@rhizome/sync';
 * import { generateDatabaseId } from '@rhizome/core';
 *
 * const db = await openDatabase({ id: generateDatabaseId(), path: 'notes.db' });
 * db.put('n1', { title: 'Hello', tags: ['a'] });
 * db.get('n1'); // { tags: ['a'], title: 'Hello' }
 * await db.close();
 * ```
 */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options === null || typeof options !== 'object') throw new InvalidConfigError('options', 'must be an object');
  const { id, path, secret } = options;
  if (typeof id !== 'string' || id.length === 0) throw new InvalidConfigError('id', 'must be a non-empty string');
  if (path !== undefined && (typeof path !== 'string' || path.length === 0)) throw new InvalidConfigError('path', 'must be a non-empty string');
  let material: Uint8Array;
  try {
    material = keyMaterial(id, secret);
  } catch (error) {
    throw new InvalidConfigError('secret', error instanceof Error ? error.message : String(error));
  }
  const limits = {
    maxFrameBytes: positiveInt('limits.maxFrameBytes', options.limits?.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES),
    maxMessageBytes: positiveInt('limits.maxMessageBytes', options.limits?.maxMessageBytes, DEFAULT_MAX_MESSAGE_BYTES),
    maxQueuedBytes: positiveInt('limits.maxQueuedBytes', options.limits?.maxQueuedBytes, DEFAULT_MAX_QUEUED_BYTES),
  };
  let transport: Transport;
  let owns: boolean;
  let reportTransportError: (error: Error) => void = () => undefined;
  const given = options.transport;
  if (given === undefined) {
    transport = new DisabledTransport();
    owns = true;
  } else if (given === null || typeof given !== 'object') {
    throw new InvalidConfigError('transport', 'must be a Transport or a transport configuration');
  } else if (isTransport(given)) {
    transport = given;
    owns = false;
  } else {
    if (given.encryption === false) {
      throw new InvalidConfigError('transport.encryption', 'sealing cannot be turned off: every frame a database sends is sealed');
    }
    // Errors the transport handles by itself (lost sessions, failed reconnects) become `error`
    // events of the database; an onError of the app's configuration still gets them too.
    const appOnError = given.onError;
    transport = createTransport({
      ...given,
      onError: (error) => {
        // The event first: an app handler that throws must not hide the error from db.events.
        reportTransportError(error);
        appOnError?.(error);
      },
    });
    owns = true;
  }
  const frameBytes = Math.min(transport.maxMessageSize > 0 ? transport.maxMessageSize : limits.maxFrameBytes, limits.maxFrameBytes);
  if (frameBytes < MIN_FRAME_BYTES) {
    if (owns) await transport.disconnect().catch(() => undefined);
    throw new InvalidConfigError(
      frameBytes === limits.maxFrameBytes ? 'limits.maxFrameBytes' : 'transport.maxMessageSize',
      `frames of ${frameBytes} bytes are too small for sealed chunks (at least ${MIN_FRAME_BYTES})`,
    );
  }
  const sealer = new FrameSealer(material, deriveTopic(id));
  let store: DocStore;
  try {
    store = openStore(path);
  } catch (error) {
    if (owns) await transport.disconnect().catch(() => undefined);
    throw error;
  }
  let db: Database;
  try {
    db = new Database(id, store, transport, owns, sealer, limits, options.persistence ?? {});
  } catch (error) {
    store.close();
    if (owns) await transport.disconnect().catch(() => undefined);
    throw error;
  }
  reportTransportError = (error) => {
    if (!db.closed) db.events.publish({ type: 'error', error });
  };
  db.start();
  return db;
}
