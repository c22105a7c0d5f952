import type * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import {
  AsyncQueue,
  rareRecordIsEmpty,
  ClosedError,
  DEFAULT_TIMEOUT_MS,
  DisabledTransport,
  InvalidArgumentError,
  InvalidConfigError,
  SyncBroadcaster,
  TimeoutError,
  deriveTopic,
  flatHex,
  loadedTransport,
} from '@rhizome/core';
import type { Connection, DocStore, JsonValue, MailboxAccess, PeerInfo, QueueListener, SubscribeOptions, Subscription, SyncEvent, TopicHash, Transport, TransportConfig } from '@rhizome/core';
import { UpdateRouter } from './broadcast.js';
import { TurnScheduler, type TurnRunner } from './coalesce.js';
import { dropEncodedState } from './state-cache.js';
import type { Macrotask, Platform } from './platform/types.js';
import { RateWindow, resolveHealthOptions } from './health.js';
import type { HealthOptions } from './health.js';
import { HealthMonitor } from './monitor.js';
import { DatabaseAwareness, type AwarenessChanges, type AwarenessHook } from './presence.js';
import type { DatabaseHealthStatus, MonitorHost } from './monitor.js';
import { NodeModel } from './nodes.js';
import { WriteBatch, type PendingWrite, type WriteBatchSink } from './put-batch.js';
import { setUpdateHook, stopFastUpdates, useFastUpdates } from './doc-updates.js';
import { DocPersistence, PERSISTENCE_ORIGIN } from './persistence.js';
import type { PersistenceOptions, StorageStatus } from './persistence.js';
import { assertWritableDatabase } from './storage-health.js';
import { FrameSealer, SEAL_OVERHEAD, keyMaterial } from './seal.js';
import { DEFAULT_FLUSH_TIMEOUT_MS, DeliveryTimeoutError } from './delivery.js';
import { AWARENESS_DISCONNECT_ORIGIN, PeerSession } from './session.js';
import type { PeerStats, SessionHost } from './session.js';
import { assertNodeId, copyNodeData } from './validate.js';
import { attachMailbox, bindHeldMailbox, type DatabaseMailbox, type MailboxBinding, type MailboxSource } from './mailbox-hook.js';
import { isMailboxWrite } from './mailbox.js';
import { CHUNK_HEADER_LENGTH } from './wire.js';
import { newDocGuid } from './doc-guid.js';
import { DatabaseDoc, type DocUpdateHook } from './database-doc.js';
import { MultiTransport, type TransportPart } from './multi-transport.js';
import { ReplicaRouter, connectionPath, encodeReplica, newReplicaId } from './replicas.js';
import { SessionTable } from './session-table.js';

/** Largest sealed frame the sync layer sends, even when the transport takes more. */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;
/** Default bound on one reassembled message (and so on reassembly memory per connection). */
export const DEFAULT_MAX_MESSAGE_BYTES = 512 * 1024 * 1024;
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
  /**
   * Where the data lives, in the platform's default store: in Node an SQLite file (created if
   * missing), in a browser an IndexedDB store of that name (`rhizome:<path>`). Absent or
   * `':memory:'` keeps the data in memory. Not together with `store`.
   */
  path?: string;
  /**
   * Any {@link DocStore} instead of the platform's default (the caller keeps ownership: the
   * database flushes it on close but does not close it). Not together with `path`.
   */
  store?: DocStore;
  /**
   * The network: a {@link Transport} (the caller keeps ownership and disconnects it), or a
   * configuration for `createTransport` (the database owns that transport and disconnects it on
   * close). Default: a disabled transport (local only).
   *
   * An array syncs over several transports at once (e.g. `[{ mode: 'dht', ... }, { mode: 'relay',
   * relayUrl }]`): each remote replica gets one session however many transports reach it, over
   * the best path (direct, then WebSocket relay, then circuit relay); the others wait as standbys.
   */
  transport?: Transport | Partial<TransportConfig> | Array<Transport | Partial<TransportConfig>>;
  /**
   * Key material for sealing frames, instead of the database id. Replicas with different
   * secrets cannot read each other's frames.
   */
  secret?: string | Uint8Array;
  /** Sync limits (advanced). */
  limits?: {
    /** Largest sealed frame to send (capped by the transport's `maxMessageSize`). Default 1 MiB. */
    maxFrameBytes?: number;
    /** Largest message a peer may send us (reassembled). Default 512 MiB (so a single value of 256 MiB and more fits). */
    maxMessageBytes?: number;
    /** Queued outbound update bytes per peer before they collapse into one diff. Default 16 MiB. */
    maxQueuedBytes?: number;
  };
  /** Compaction thresholds of the persisted update log, and how often to look for other processes' writes. */
  persistence?: Pick<PersistenceOptions, 'compactAfterUpdates' | 'compactAfterBytes' | 'compactIdleMs' | 'watchIntervalMs'>;
  /**
   * Open the existing file at `path` for reading only: nothing is written to it, `put`,
   * `delete` and `putMany` throw `ERR_STORE_READ_ONLY`, and changes from peers stay in memory. Without it, a
   * file that cannot be written is refused at open with that error, naming the file.
   */
  readOnly?: boolean;
  /**
   * Node, SQLite file at `path` only: hold the file for this database alone while it is open
   * (SQLite's `locking_mode=EXCLUSIVE`, `SqliteStoreOptions.exclusive` of `@rhizome/store-sqlite`).
   * Each write's commit then takes no file locks and reads no sequence number from the file: one
   * put per macrotask costs about a third less (BENCHMARKS.md § Issue 12, Session 8 (puts)), with
   * the same durability. The price: no other process can open the file meanwhile (`rhizome
   * put|get --db FILE`, a second app, `sqlite3`): they fail with `ERR_STORE_IO` (reason
   * `SQLITE_BUSY`), and this open fails the same way if another process has the file open.
   * Default `false` (several processes may share a file). Ignored for memory and browser stores;
   * not with `readOnly` or `store`.
   */
  exclusive?: boolean;
  /** Pings, health thresholds and health event limits (ARCHITECTURE.md § Health). */
  health?: HealthOptions;
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
  /** When the database was opened (ms since the epoch) and for how long it has been open. */
  openedAt: number;
  uptimeMs: number;
  /** The database's own health (storage, and whether local writes can reach anyone). */
  health: DatabaseHealthStatus;
  /**
   * Local updates (puts, deletes, direct doc edits) and remote updates applied, since open. A
   * batch of queued puts and deletes (see `Database.put`) counts as the writes it holds; a
   * `transact` or `putMany` call, or a direct doc transaction, as one.
   */
  localUpdates: number;
  remoteUpdates: number;
  /** Per-second averages over the last minute. */
  rates: { localUpdates: number; remoteUpdates: number };
  /** The persistence binding: updates waiting for the end-of-tick write, log size, compactions. */
  persistence: { pendingUpdates: number; logUpdates: number; compactions: number };
  /** Whether writes reach the file: health, pending updates, the last failure. */
  storage: StorageStatus;
  /**
   * The most recent failed write to the file (disk full, I/O error, ...), also after a later
   * success; `undefined` if none. `storage.health` says whether it is still failing.
   */
  lastError: Error | undefined;
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


/** Core's AsyncQueue (what every built-in transport yields connections through) can be listened to. */
function isListenable(stream: AsyncIterable<Connection>): stream is AsyncQueue<Connection> {
  return stream instanceof AsyncQueue;
}

function isTransport(value: object): value is Transport {
  return typeof (value as Partial<Transport>).connect === 'function' && typeof (value as Partial<Transport>).disconnect === 'function';
}

function positiveInt(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new InvalidConfigError(field, 'must be a positive integer');
  return value;
}

/** Bits of a {@link Database}'s yes/no states. */
const OWNS_STORE = 1;
const OWNS_TRANSPORT = 2;
const READ_ONLY = 4;
const CLOSED = 8;
const LISTENING = 16;
/** Channels of the database's update rates (one window of two channels, made at the first update). */
const LOCAL_RATE = 0;
const REMOTE_RATE = 1;
/** `#mailbox` is the transport's mailbox access, which the host listens to (no binding yet). */
const MAILBOX_HELD = 32;
/** A local write happened while the mailbox access was held (the binding, once made, deposits it). */
const MAILBOX_DIRTY = 64;

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
  /**
   * Its public rendezvous topic, `deriveTopic(id)`: a copy made at each read (the sealer keeps
   * the bytes; a `Uint8Array` held per database is ~0.2 KiB with its buffer).
   */
  get topic(): TopicHash {
    return this.#host.sealer.topicCopy();
  }
  readonly #doc: Y.Doc;
  /**
   * Puts and deletes of this task not yet applied to the doc (sync/src/put-batch.ts); made at the
   * first put or delete (a database nobody writes to through the node API holds none).
   */
  #batch: WriteBatch | null = null;
  #writeBatch(): WriteBatch {
    return (this.#batch ??= new WriteBatch(this.#doc, this.#host));
  }
  /** {@link events}: a subscription starts the node-event listener (see {@link #nodeEvents}). */
  static readonly #Events = class DatabaseEvents extends SyncBroadcaster<SyncEvent> {
    readonly #db: Database;

    constructor(db: Database) {
      super();
      this.#db = db;
    }

    override subscribe(options?: SubscribeOptions): Subscription<SyncEvent> {
      const sub = super.subscribe(options);
      this.#db.#listenNodeEvents();
      return sub;
    }
  };

  /** Everything that happens: node changes (local and remote), peers, sync, errors. */
  readonly events: SyncBroadcaster<SyncEvent> = new Database.#Events(this);
  /**
   * The Yjs document (apps may bind editors to it; the node API uses the `nodes` and `fields`
   * maps). Reading this property first applies the puts and deletes of the current task that
   * are still queued (see {@link put}), so the document it returns holds them.
   */
  get doc(): Y.Doc {
    this.#batch?.flush();
    return this.#doc;
  }
  /** y-protocols awareness (presence), shared with every peer. */
  readonly awareness: awarenessProtocol.Awareness;
  /** The transport this database syncs over. */
  readonly transport: Transport;

  /**
   * The node API's view of the doc, made at its first use ({@link #nodes}): until then the doc
   * holds no `nodes`/`fields` maps either (~0.65 KiB with them for a database nobody reads or writes
   * through the node API; a peer's update makes them as Yjs does for any root type).
   */
  #model: NodeModel | null = null;
  #nodes(): NodeModel {
    return (this.#model ??= new NodeModel(this.#doc));
  }
  /** The store: the persistence binding's (no field of its own). */
  get #store(): DocStore {
    return this.#persistence.store;
  }
  /** {@link OWNS_STORE}, {@link OWNS_TRANSPORT}, {@link READ_ONLY}, {@link CLOSED}, {@link LISTENING}: bits of one small integer. */
  #bits = 0;
  #bit(bit: number, on: boolean): void {
    this.#bits = on ? this.#bits | bit : this.#bits & ~bit;
  }
  get #ownsStore(): boolean {
    return (this.#bits & OWNS_STORE) !== 0;
  }
  readonly #persistence: DocPersistence;
  get #ownsTransport(): boolean {
    return (this.#bits & OWNS_TRANSPORT) !== 0;
  }
  readonly #host: SessionHost & MonitorHost & WriteBatchSink & QueueListener<Connection> & DocUpdateHook & AwarenessHook & MailboxSource & { handleOffer(): void; readonly nextTurn: TurnRunner };
  readonly #router: UpdateRouter;
  /** Active sessions by transport and peer id; one per remote replica (see {@link ReplicaRouter}). */
  readonly #sessions = new SessionTable<PeerSession>();
  /**
   * What a database holds only at times (standbys, replaced sessions, totals of ended sessions,
   * waiters, the abort controller, closing state): one record made at the first of them and
   * dropped once all are back to empty, behind private accessors (ARCHITECTURE § Memory of an
   * idle replica: an idle database keeps one field for eleven).
   */
  #rare: DatabaseRare | null = null;
  #setRare<K extends keyof DatabaseRare>(key: K, value: DatabaseRare[K]): void {
    let rare = this.#rare;
    const empty = value === null || value === false;
    if (rare === null) {
      if (empty) return;
      rare = this.#rare = newRare();
    }
    rare[key] = value;
    if (empty && rareRecordIsEmpty(rare)) this.#rare = null;
  }
  /** Sessions to a replica that an active session already reaches over a better path. */
  get #standby(): Set<PeerSession> | null {
    return this.#rare?.standby ?? null;
  }
  set #standby(value: Set<PeerSession> | null) {
    this.#setRare('standby', value);
  }
  readonly #replicas = new ReplicaRouter<PeerSession>(this.#sessions);
  /** This replica's id (hex), sent sealed at the start of every session. */
  readonly replicaId: string;
  get #ended(): WeakSet<PeerSession> | null {
    return this.#rare?.ended ?? null;
  }
  set #ended(value: WeakSet<PeerSession> | null) {
    this.#setRare('ended', value);
  }
  /**
   * Sessions replaced by a newer connection of their peer and not ended yet (close() waits for
   * them, as for the active and standby ones); made at the first replacement.
   */
  get #retiring(): Set<PeerSession> | null {
    return this.#rare?.retiring ?? null;
  }
  set #retiring(value: Set<PeerSession> | null) {
    this.#setRare('retiring', value);
  }
  /** Called with each new session (pending {@link whenDelivered} calls ask it to acknowledge). */
  get #onAttach(): Set<(session: PeerSession) => void> | null {
    return this.#rare?.onAttach ?? null;
  }
  set #onAttach(value: Set<(session: PeerSession) => void> | null) {
    this.#setRare('onAttach', value);
  }
  /** Called with `ERR_CLOSED` when the database closes (pending {@link whenDelivered} calls). */
  get #onClose(): Set<(error: Error) => void> | null {
    return this.#rare?.onClose ?? null;
  }
  set #onClose(value: Set<(error: Error) => void> | null) {
    this.#setRare('onClose', value);
  }
  /**
   * Leaves the topic of a transport the database does not own (or a multi-transport, whose parts
   * may be the app's). A transport the database owns is left by disconnecting it, so it gets no
   * signal: an `AbortSignal` with its listener is ~0.6 KiB per database (two maps of Node's
   * EventTarget), for as long as it is open (ARCHITECTURE § Memory of an idle replica).
   */
  get #abort(): AbortController | null {
    return this.#rare?.abort ?? null;
  }
  set #abort(value: AbortController | null) {
    this.#setRare('abort', value);
  }
  /** Counters of sessions that ended; null until one ends. */
  get #totals(): SessionTotals | null {
    return this.#rare?.totals ?? null;
  }
  set #totals(value: SessionTotals | null) {
    this.#setRare('totals', value);
  }
  /** whenSynced() calls waiting; null while none waits. */
  get #waiters(): SyncWaiter[] | null {
    return this.#rare?.waiters ?? null;
  }
  set #waiters(value: SyncWaiter[] | null) {
    this.#setRare('waiters', value);
  }
  get #readOnly(): boolean {
    return (this.#bits & READ_ONLY) !== 0;
  }
  readonly #monitor: HealthMonitor;
  /**
   * When it was opened on the monotonic clock, in whole ms (a small integer in its field: a
   * fraction, or `Date.now()`'s value, would be a boxed number, 16 B more). The wall-clock time of
   * the opening is derived from it and {@link #wallSkew} ({@link #openedAt}).
   */
  readonly #clock0 = Math.floor(performance.now());
  /**
   * How far the wall clock was from `performance.timeOrigin + #clock0` at the open, in whole ms: 0
   * or a few ms in a process whose machine never slept (a small integer), but the time asleep
   * after a sleep (the monotonic clock does not tick then) or the step after a wall-clock change —
   * without it `stats().openedAt` would be backdated by that much.
   */
  readonly #wallSkew = Date.now() - Math.round(performance.timeOrigin + this.#clock0);
  /** When it was opened, in ms since the epoch (`stats().openedAt`). */
  get #openedAt(): number {
    return Math.round(performance.timeOrigin + this.#clock0) + this.#wallSkew;
  }
  #localSeq = 0;
  /** How many writes the next local update carries (a batch: several; see #applyBatch). */
  #batchWrites = 1;
  #remoteUpdates = 0;
  /** Local and remote update rates, made at the first update (an idle database counts none). */
  #rates: RateWindow | null = null;
  get #closed(): boolean {
    return (this.#bits & CLOSED) !== 0;
  }
  set #closed(on: boolean) {
    this.#bit(CLOSED, on);
  }
  get #closing(): Promise<void> | null {
    return this.#rare?.closing ?? null;
  }
  set #closing(value: Promise<void> | null) {
    this.#setRare('closing', value);
  }
  /** Set when close() could not flush or release the store; a later close() tries again. */
  get #storageOpen(): boolean {
    return this.#rare?.storageOpen ?? false;
  }
  set #storageOpen(value: boolean) {
    this.#setRare('storageOpen', value);
  }
  /** The join ({@link #run}) while it runs; null once it returned (an open database keeps no settled promise). */
  get #network(): Promise<void> | null {
    return this.#rare?.network ?? null;
  }
  set #network(value: Promise<void> | null) {
    this.#setRare('network', value);
  }
  /**
   * The transport's connection stream, when it is listened to (see {@link #run}): true while it
   * has not ended. `#streamEnded` is made only when close() waits for the end.
   */
  get #listening(): boolean {
    return (this.#bits & LISTENING) !== 0;
  }
  set #listening(on: boolean) {
    this.#bit(LISTENING, on);
  }
  get #streamEnded(): (() => void) | null {
    return this.#rare?.streamEnded ?? null;
  }
  set #streamEnded(value: (() => void) | null) {
    this.#setRare('streamEnded', value);
  }
  /**
   * The sealed mailbox of the relay, when the transport offers one (sync/src/mailbox-hook.ts): its
   * binding, or — until an offer comes or the app reads {@link mailbox} — the access itself, whose
   * offers the host listens to ({@link MAILBOX_HELD}; no binding object meanwhile).
   */
  #mailbox: MailboxBinding | MailboxAccess | null = null;
  /** The mailbox binding, made now from a held access (the host stops listening; `offered`: bound at once). */
  #mailboxBinding(offered = false): MailboxBinding | null {
    const held = this.#mailbox;
    if (held === null || (this.#bits & MAILBOX_HELD) === 0) return held as MailboxBinding | null;
    this.#bit(MAILBOX_HELD, false);
    const binding = bindHeldMailbox(held as MailboxAccess, this.#host, this.#host, (this.#bits & MAILBOX_DIRTY) !== 0, offered);
    this.#bit(MAILBOX_DIRTY, false);
    this.#mailbox = binding;
    return binding;
  }

  /** @internal Use {@link openDatabase}. */
  constructor(
    id: string,
    store: DocStore,
    transport: Transport,
    ownsTransport: boolean,
    sealer: FrameSealer,
    limits: { maxFrameBytes: number; maxMessageBytes: number; maxQueuedBytes: number },
    persistenceOptions: PersistenceOptions,
    host: { macrotask: Macrotask; ownsStore: boolean },
    healthOptions: Required<HealthOptions> = resolveHealthOptions(undefined),
    readOnly = false,
    replicaId: Uint8Array = newReplicaId(),
  ) {
    this.id = id;
    this.#doc = new DatabaseDoc({ guid: newDocGuid(), gcFilter: gcEverything });
    this.#bits = (host.ownsStore ? OWNS_STORE : 0) | (ownsTransport ? OWNS_TRANSPORT : 0) | (readOnly ? READ_ONLY : 0);
    this.transport = transport;
    // The host first: the persistence binding and the awareness report their errors to it.
    const transportMax = transport.maxMessageSize > 0 ? transport.maxMessageSize : limits.maxFrameBytes;
    this.#host = new Database.#Host(
      this,
      sealer,
      host.macrotask,
      {
        maxFrameBytes: Math.min(transportMax, limits.maxFrameBytes),
        maxMessageBytes: limits.maxMessageBytes,
        maxQueuedBytes: limits.maxQueuedBytes,
        networked: transport.name !== 'disabled',
      },
    );
    this.#persistence = new DocPersistence(store, id, this.#doc, {
      ...persistenceOptions,
      readOnly,
      macrotask: host.macrotask,
      onError: this.#host,
      // This database's own 'update' listener hands it every update (#onUpdate): one listener, not two.
      listen: false,
    });
    // From here on the binding holds timers (the store watch, a compaction) and the awareness a
    // place in the shared liveness ticker: a constructor that throws (a stored log that is not
    // Yjs) releases them, since nobody gets a database to close (openDatabase closes the store).
    let awareness: DatabaseAwareness | undefined;
    try {
      this.#persistence.load();
      awareness = new DatabaseAwareness(this.#doc, this.#host);
      this.awareness = awareness;
      // The transport's own peer id string when it is this replica id (a relay transport the
      // database made for itself): one string of 48 B per database, not two.
      const hex = flatHex(replicaId);
      const peerId = (transport as { peerId?: unknown }).peerId;
      this.replicaId = typeof peerId === 'string' && peerId === hex ? peerId : hex;
      // Broadcast frames are bounded by the sync limit alone (the channel applies its own).
      this.#router = new UpdateRouter(this.#host, limits.maxFrameBytes);
      this.#monitor = new HealthMonitor(this.#host, healthOptions);
      // The doc's and the awareness's first 'update' listener is the host (a field each, not a
      // listener set and a closure: ARCHITECTURE § Memory of an idle replica); removed on close.
      setUpdateHook(this.#doc as DatabaseDoc, this.#host);
      useFastUpdates(this.#doc); // stopped by stopFastUpdates on close
      // 'afterTransaction' (node events) is listened to from the first subscription on (#Events).
      awareness.hook = this.#host;
    } catch (error) {
      try {
        this.#persistence.close();
      } catch {
        // Nothing was queued; a store that fails here fails the open with the first error.
      }
      awareness?.destroy();
      throw error;
    }
  }

  /**
   * The database's side of its sessions and of its health monitor: one object with prototype
   * methods. It was two object literals with a dozen arrow functions, ~1 KiB per database, and a
   * process can hold thousands of idle databases (ARCHITECTURE § Memory of an idle replica).
   * A nested class, so it reaches the database's private members.
   */
  static readonly #Host = class DatabaseHost extends TurnScheduler implements SessionHost, MonitorHost, WriteBatchSink, QueueListener<Connection>, DocUpdateHook, AwarenessHook, MailboxSource {
    readonly #db: Database;
    readonly sealer: FrameSealer;
    /** The frame and queue limits and whether the transport reaches anyone: one shared frozen record per set of them. */
    readonly #limits: HostLimits;

    constructor(db: Database, sealer: FrameSealer, macrotask: Macrotask, limits: HostLimits) {
      super(macrotask);
      this.#db = db;
      this.sealer = sealer;
      this.#limits = sharedLimits(limits);
    }

    /**
     * The database's turn scheduler (coalesce.ts): the host itself, which extends it — one object
     * per database, not a host and a scheduler (ARCHITECTURE § Memory of an idle replica).
     */
    get scheduler(): TurnScheduler {
      return this;
    }

    /** The document itself (the database's `doc` getter flushes queued writes first; sessions need not). */
    get doc(): Y.Doc {
      return this.#db.#doc;
    }

    get awareness(): awarenessProtocol.Awareness {
      return this.#db.awareness;
    }

    /** {@link MailboxSource}: the store and the database id. */
    get store(): DocStore {
      return this.#db.#store;
    }

    get docId(): string {
      return this.#db.id;
    }

    get maxFrameBytes(): number {
      return this.#limits.maxFrameBytes;
    }

    get minFrameBytes(): number {
      return MIN_FRAME_BYTES;
    }

    get maxMessageBytes(): number {
      return this.#limits.maxMessageBytes;
    }

    get maxQueuedBytes(): number {
      return this.#limits.maxQueuedBytes;
    }

    get networked(): boolean {
      return this.#limits.networked;
    }

    /** This replica's REPLICA message, made per session from the database's `replicaId` (no copy kept). */
    get replicaHello(): Uint8Array {
      return encodeReplica(hexToBytes(this.#db.replicaId));
    }

    reportError(error: unknown): void {
      this.#db.#report(error);
    }

    applyBatch(writes: PendingWrite[]): void {
      this.#db.#applyBatch(writes);
    }

    onSynced(session: PeerSession): void {
      this.#db.events.publish({ type: 'synced', peerId: session.peerId });
      this.#db.#checkWaiters();
    }

    onForeign(): void {
      this.#db.#checkWaiters();
    }

    onClosed(session: PeerSession, reason?: string): void {
      this.#db.#retiring?.delete(session);
      this.#db.#onSessionClosed(session, reason);
    }

    onReplica(session: PeerSession): void {
      this.#db.#onReplica(session);
    }

    now(): number {
      return performance.now();
    }

    sessions(): Iterable<PeerSession> {
      return this.#db.#sessions.values();
    }

    localSeq(): number {
      return this.#db.#localSeq;
    }

    pingSeq(session: PeerSession): number {
      return this.#db.#router.pingSeq(session, this.#db.#localSeq);
    }

    storageError(): (Error & { code?: string }) | null {
      // A failed write stays queued and is retried (with backoff, and by every flush); the
      // binding is 'failing' until a write succeeds again.
      const storage = this.#db.#persistence.status();
      return storage.health === 'failing' ? (storage.lastError ?? null) : null;
    }

    publish(event: SyncEvent): void {
      if (!this.#db.#closed) this.#db.events.publish(event);
    }

    /** {@link DocUpdateHook}: every update of the document, first of its `'update'` listeners. */
    onDocUpdate(update: Uint8Array, origin: unknown, _doc: Y.Doc, tr: Y.Transaction): void {
      this.#db.#onUpdate(update, origin, tr);
    }

    /** {@link AwarenessHook}: every awareness `'update'`, first of its listeners. */
    onAwarenessUpdate(changes: AwarenessChanges, origin: unknown): void {
      this.#db.#onAwareness(changes, origin);
    }

    /** {@link MailboxOfferListener} of the mailbox access the database holds: an offer came, so the binding is made and bound. */
    handleOffer(): void {
      this.#db.#mailboxBinding(true);
    }

    /** {@link QueueListener} of the transport's connection stream: one Connection. */
    onItem(conn: Connection): void {
      // A microtask later, as the loop got them: the transport pushes from inside its own frame
      // handling, and a session starts sending at once.
      queueMicrotask(() => this.#db.#onConnection(conn));
    }

    /** {@link QueueListener}: the stream ended (`error`: it failed). */
    onEnd(error?: unknown): void {
      this.#db.#onStreamEnd(error);
    }
  };

  // ---- the node API -------------------------------------------------------------------------

  /**
   * Upserts node `nodeId`: sets the given fields, keeps the others. Data must be a plain object
   * of JSON values (`ERR_INVALID_ARGUMENT` otherwise, thrown by this call). In SQLite before the
   * next macrotask.
   *
   * Outside a transaction, the puts and deletes of one task are batched: they are applied to
   * {@link doc} together, as one Yjs transaction (one update, one SQLite row, one message to each
   * peer), in a microtask at the end of the task, or earlier as soon as anything reads the
   * database (`get`, `list`, `size`, `doc`, `transact`, `flush`, ...) or 1,000 writes are queued. So reads see your writes,
   * but `doc` observers and `'update'` listeners see a put at the end of the task rather than
   * inside the call, and code that holds a Yjs type of `doc` and reads it right after a put sees
   * the put once the task's microtasks ran. Inside {@link transact} (or any `doc.transact`) a put
   * joins that transaction at once. For a bulk load, {@link putMany} and {@link transact} remain
   * the explicit ways to make many writes one update.
   *
   * @example
   * ```ts
   * db.transact(() => {
   *   for (const row of rows) db.put(row.id, row.data);
   * });
   * ```
   */
  put(nodeId: string, data: Record<string, JsonValue>): void {
    this.#assertOpen();
    assertWritableDatabase(this.#readOnly, this.#store);
    assertNodeId(nodeId);
    const copy = copyNodeData(data);
    const batch = this.#writeBatch();
    if (batch.accepting) {
      batch.add({ id: nodeId, data: copy });
    } else {
      batch.flush(); // writes queued before this transaction opened stay ahead of this one
      this.#nodes().put(nodeId, copy, this);
    }
  }

  /**
   * Upserts many nodes in one Yjs transaction: one update, one SQLite row, one message per peer
   * (the fast path for bulk writes). Every entry is validated before anything is written, so a
   * bad one (`ERR_INVALID_ARGUMENT`) leaves the database unchanged.
   *
   * @example
   * ```ts
   * db.putMany(rows.map((r) => [r.id, r.data]));
   * ```
   */
  putMany(entries: Iterable<readonly [string, Record<string, JsonValue>]>): void {
    this.#assertOpen();
    assertWritableDatabase(this.#readOnly, this.#store);
    const copies: Array<[string, Record<string, JsonValue>]> = [];
    for (const [nodeId, data] of entries) {
      assertNodeId(nodeId);
      copies.push([nodeId, copyNodeData(data)]);
    }
    if (copies.length === 0) return;
    this.#batch?.flush();
    this.#nodes().putMany(copies, this);
  }

  /**
   * Runs `fn` as one Yjs transaction and returns its result: every `put`/`delete` inside
   * becomes one update (one SQLite row, one message per peer, one set of node events). Writes
   * are not rolled back if `fn` throws (Yjs has no rollback): what ran before the throw stays.
   *
   * @example
   * ```ts
   * db.transact(() => {
   *   db.put('a', { done: true });
   *   db.delete('b');
   * });
   * ```
   */
  transact<T>(fn: () => T): T {
    this.#assertOpen();
    let result!: T;
    this.#batch?.flush();
    this.#doc.transact(() => {
      result = fn();
    }, this);
    return result;
  }

  /** A copy of the node's fields, or `undefined` if there is no such node. */
  get(nodeId: string): Record<string, JsonValue> | undefined {
    this.#assertOpen();
    assertNodeId(nodeId);
    this.#batch?.flush();
    return this.#nodes().get(nodeId);
  }

  /**
   * Deletes the node (a no-op if it does not exist). In SQLite before the next macrotask.
   * Batched with the task's puts, in order (see {@link put}).
   */
  delete(nodeId: string): void {
    this.#assertOpen();
    assertWritableDatabase(this.#readOnly, this.#store);
    assertNodeId(nodeId);
    const batch = this.#writeBatch();
    if (batch.accepting) {
      batch.add({ id: nodeId, data: null });
    } else {
      batch.flush();
      this.#nodes().delete(nodeId, this);
    }
  }

  /** Every node, sorted by id. */
  list(): Array<{ id: string; data: Record<string, JsonValue> }> {
    this.#assertOpen();
    this.#batch?.flush();
    return this.#nodes().list();
  }

  /** Number of nodes. */
  get size(): number {
    this.#batch?.flush();
    return this.#nodes().size;
  }

  /** The peers connected on the topic now. */
  peers(): PeerInfo[] {
    return [...this.#sessions.values()].map((s) => ({ peerId: s.peerId, addresses: [] }));
  }

  /** Traffic counters (wire bytes of sealed frames). */
  stats(): DatabaseStats {
    this.#batch?.flush();
    const now = performance.now();
    const total = { ...(this.#totals ?? NO_TOTALS) };
    const peers: PeerStats[] = [];
    for (const s of this.#sessions.values()) {
      addTotals(total, s.stats);
      peers.push(this.#peerStats(s, now));
    }
    // Broadcast frames are sealed and sent once for all the peers of a group: counted once.
    const groups = [this.#router.retired, ...[...this.#router.groups()].map((g) => g.stats)];
    for (const g of groups) {
      total.framesSent += g.framesSent;
      total.bytesSent += g.bytesSent;
      total.collapses += g.collapses;
    }
    const storage = this.#persistence.status();
    return {
      ...total,
      peers,
      openedAt: this.#openedAt,
      uptimeMs: Math.round(now - this.#clock0),
      health: this.#monitor.database(),
      localUpdates: this.#localSeq,
      remoteUpdates: this.#remoteUpdates,
      rates: { localUpdates: this.#rates?.perSecond(now, LOCAL_RATE) ?? 0, remoteUpdates: this.#rates?.perSecond(now, REMOTE_RATE) ?? 0 },
      persistence: { pendingUpdates: this.#persistence.pendingUpdates, logUpdates: this.#persistence.logUpdates, compactions: this.#persistence.compactions },
      storage,
      lastError: storage.lastError,
    };
  }

  #peerStats(s: PeerSession, now: number): PeerStats {
    const m = s.meter;
    const health = this.#monitor.peer(s);
    return {
      peerId: s.peerId,
      synced: s.synced,
      ...s.stats,
      queued: s.queued,
      maxFrameBytes: s.maxFrameBytes,
      transport: s.conn.transport,
      path: connectionPath(s.conn),
      // The sealed ping's RTT once it answered; until then the transport's own (libp2p ping).
      rttMs: m.rttMs === null ? (s.conn.rttMs ?? null) : Math.round(m.rttMs * 100) / 100,
      replicaId: s.replicaId,
      connectedAt: Math.round(this.#openedAt + (m.connectedAt - this.#clock0)),
      health: health.health,
      healthReason: health.reason,
      idleMs: Math.round(now - m.lastReceivedAt),
      rates: m.rates(now),
      unackedUpdates: Math.max(0, this.#localSeq - m.ackedSeq),
      pingsSent: m.pingsSent,
      pongsReceived: m.pongsReceived,
    };
  }

  /**
   * Writes pending updates to the store now (they are written at the end of the tick anyway)
   * and resolves once they are on disk. With SQLite that is at once (the write is in the WAL
   * when it returns); a browser store writes behind, and this waits for its transactions to
   * commit. After `await db.flush()` a reload or a crash finds every write made before it.
   * Rejects with the store's typed error (`ERR_STORE_IO`, e.g. a full disk) if the write fails;
   * the updates then stay in memory and are retried.
   */
  async flush(): Promise<void> {
    this.#assertOpen();
    this.#batch?.flush();
    this.#persistence.flush();
    await this.#store.flush?.();
  }

  /** Replaces the persisted update log by one snapshot. */
  compact(): void {
    this.#assertOpen();
    this.#batch?.flush();
    this.#persistence.compact();
  }

  /**
   * Resolves when every connected peer has completed its first full exchange (immediately when
   * no peer is connected, unless `minPeers` asks to wait for some). Rejects with `ERR_TIMEOUT`
   * after `timeoutMs` (default 30 s) and with `ERR_CLOSED` if the database closes first.
   */
  whenSynced(options: WhenSyncedOptions = {}): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('database'));
    this.#batch?.flush();
    const minPeers = options.minPeers ?? 0;
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isInteger(minPeers) || minPeers < 0) return Promise.reject(new InvalidArgumentError('minPeers must be a non-negative integer'));
    if (typeof timeoutMs !== 'number' || !(timeoutMs > 0)) return Promise.reject(new InvalidArgumentError('timeoutMs must be a positive number'));
    if (this.#allSynced(minPeers)) return Promise.resolve();
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    return new Promise<void>((resolve, reject) => {
      const wait = new Database.#SyncWait(this, minPeers, timeoutMs, resolve, reject, signal);
      (this.#waiters ??= []).push(wait);
    });
  }

  /**
   * One pending {@link whenSynced}: the waiter, its timer's argument and its abort listener in
   * one object with methods, not five closures and their scope. An app awaits it while its
   * replica connects, which can take a while (thousands of replicas opened at once: many
   * young-generation collections), and what waits that long is promoted and then dies in the
   * old generation (BENCHMARKS.md § Issue 12, Session 13 (rssconn)).
   */
  static readonly #SyncWait = class SyncWait implements SyncWaiter {
    readonly #db: Database;
    readonly minPeers: number;
    readonly #timeoutMs: number;
    readonly #resolve: () => void;
    readonly #reject: (error: Error) => void;
    readonly #signal: AbortSignal | undefined;
    readonly #timer: ReturnType<typeof setTimeout>;

    constructor(db: Database, minPeers: number, timeoutMs: number, resolve: () => void, reject: (error: Error) => void, signal: AbortSignal | undefined) {
      this.#db = db;
      this.minPeers = minPeers;
      this.#timeoutMs = timeoutMs;
      this.#resolve = resolve;
      this.#reject = reject;
      this.#signal = signal;
      this.#timer = setTimeout(SyncWait.timedOut, timeoutMs, this);
      signal?.addEventListener('abort', this, { once: true });
    }

    static timedOut(wait: SyncWait): void {
      const db = wait.#db;
      const pending = [...db.#sessions.values()].filter((s) => !s.synced).map((s) => s.peerId);
      wait.reject(new TimeoutError(`not synced after ${wait.#timeoutMs} ms (${db.#sessions.size} peers, waiting for ${pending.length ? pending.join(', ') : `${wait.minPeers} peers`})`));
    }

    /** The signal's abort (an EventListener object). */
    handleEvent(): void {
      const reason: unknown = this.#signal?.reason;
      this.reject(reason instanceof Error ? reason : new Error('aborted'));
    }

    resolve(): void {
      this.done();
      this.#resolve();
    }

    reject(error: Error): void {
      this.done();
      this.#reject(error);
    }

    private done(): void {
      clearTimeout(this.#timer);
      this.#signal?.removeEventListener('abort', this);
      const db = this.#db;
      const still = db.#waiters?.filter((w) => w !== this) ?? [];
      db.#waiters = still.length > 0 ? still : null;
    }
  };

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
    this.#batch?.flush();
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    return new Promise<number>((resolve, reject) => {
      const acked = new Set<string>();
      let finished = false;
      const onAbort = (): void => done(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      const timer = setTimeout(() => {
        done(new DeliveryTimeoutError(acked.size, minPeers, timeoutMs, this.#sessions.size));
      }, timeoutMs);
      const seq = this.#localSeq;
      const ask = (session: PeerSession): void => {
        // Live updates to relay peers leave through the broadcast group, not the session queue:
        // the acknowledgement's step 1 is queued only once the group has handed them over, so it
        // travels behind them (else it could be answered before they arrive).
        void this.#router
          .whenHanded(session, seq)
          .then(() => session.acknowledge())
          .then((ok) => {
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
        this.#onAttach?.delete(ask);
        this.#onClose?.delete(onClose);
        if (error) reject(error);
        else resolve(acked.size);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      (this.#onClose ??= new Set()).add(onClose);
      (this.#onAttach ??= new Set()).add(ask);
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
    if (this.#closing === null) {
      this.#batch?.flush();
      const flushTimeoutMs = options.flushTimeoutMs ?? DEFAULT_FLUSH_TIMEOUT_MS;
      if (typeof flushTimeoutMs !== 'number' || !(flushTimeoutMs >= 0) || !Number.isFinite(flushTimeoutMs)) {
        return Promise.reject(new InvalidArgumentError('flushTimeoutMs must be a non-negative number'));
      }
      // The promise exists before #close runs: a close() from a listener that #close calls
      // synchronously (awareness 'change', an error event) gets this one, not a second run.
      let settle!: (run: Promise<void>) => void;
      this.#closing = new Promise<void>((resolve) => (settle = resolve));
      settle(this.#close(flushTimeoutMs));
    } else if (this.#storageOpen) {
      // The previous close could not write everything (a full disk): try the storage part again.
      this.#storageOpen = false;
      this.#closing = this.#closing.then(
        () => undefined,
        () => this.#closeStorage(),
      );
    }
    return this.#closing;
  }

  async #close(flushTimeoutMs: number): Promise<void> {
    this.#closed = true;
    this.#monitor.stop();
    let firstError: unknown;
    try {
      this.#persistence.flush();
    } catch (error) {
      firstError = error;
    }
    this.#removeAwareness([this.#doc.clientID], 'local');
    // Pending deposits reach the mailbox before the transport goes (bounded by MAILBOX_CLOSE_MS).
    await this.#mailboxBinding()?.close().catch(() => undefined);
    // Connected peers acknowledge what was queued for them (peers without the key never answer).
    const peers = [...this.#sessions.values()].filter((s) => !s.foreign);
    // (Behind the live updates still in a broadcast group, as in whenDelivered.)
    const seq = this.#localSeq;
    if (flushTimeoutMs > 0) await within(flushTimeoutMs, Promise.all(peers.map((s) => this.#router.whenHanded(s, seq).then(() => s.acknowledge()))));
    this.#abort?.abort();
    await Promise.all([...this.#sessions.values(), ...(this.#standby ?? [])].map((s) => s.close().catch(() => undefined)));
    if (this.#ownsTransport) await this.transport.disconnect().catch(() => undefined);
    // Sessions end once their connections report the close (peer-disconnected events go out).
    const streamEnd = this.#listening ? new Promise<void>((resolve) => (this.#streamEnded = resolve)) : undefined;
    const running = [...this.#sessions.values(), ...(this.#standby ?? []), ...(this.#retiring ?? [])];
    await within(CLOSE_DRAIN_MS, Promise.all([this.#network, streamEnd, ...running.map((s) => s.ended())]));
    // A connection that never reported its end: its session ends here, not never (its meter row,
    // meter-rows.ts, would stay taken until the process exits).
    for (const s of running) if (!s.closed) s.abandon('database closed');
    for (const w of [...(this.#waiters ?? [])]) w.reject(new ClosedError('database'));
    for (const onClose of [...(this.#onClose ?? [])]) onClose(new ClosedError('database'));
    setUpdateHook(this.#doc as DatabaseDoc, null);
    // Until the store is released, the binding keeps writing what the doc still gets (as it did
    // with a listener of its own).
    this.#persistence.listen();
    stopFastUpdates(this.#doc);
    this.#stopNodeEvents();
    dropEncodedState(this.#doc);
    (this.awareness as DatabaseAwareness).hook = null;
    try {
      this.awareness.destroy();
    } catch (error) {
      // An app's listener threw on the last removal (destroy() stopped before clearing its check
      // interval): drop every listener (lib0 Observable's destroy) and finish the destroy.
      this.#report(error);
      Object.getPrototypeOf(awarenessProtocol.Awareness.prototype).destroy.call(this.awareness);
      this.awareness.destroy();
    }
    this.events.close();
    // A storage failure wins over an earlier flush error: it says what is still unwritten.
    await this.#closeStorage().catch((error: unknown) => {
      firstError = error;
    });
    if (firstError !== undefined) throw firstError;
  }

  /**
   * Flushes the last updates and releases the store. If the flush fails (a full disk), the store
   * stays open with the updates in memory (retried in the background) and the typed error is
   * thrown; `close()` may be called again once space is freed. A failed checkpoint (the data is
   * safe in the WAL) releases the store and throws too.
   */
  async #closeStorage(): Promise<void> {
    try {
      this.#persistence.close();
    } catch (error) {
      this.#storageOpen = true;
      throw error;
    }
    try {
      // A store that writes behind (IndexedDB) is on disk before close() resolves.
      await this.#store.flush?.();
      // Work the store runs in the background (a checkpoint on SQLite's checkpoint thread) ends
      // first, waited for here without blocking: its close() then has nothing to wait for.
      if (this.#ownsStore) await this.#store.settle?.();
    } finally {
      if (this.#ownsStore) this.#store.close();
    }
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  // ---- network ------------------------------------------------------------------------------

  /**
   * The relay's sealed mailbox as this replica uses it (offline catch-up: ARCHITECTURE.md
   * § Mailbox), or null when the transport has none (not a relay, `mailbox: false`, not joined
   * yet). `status()` tells where it stands; `whenIdle()` waits until caught up and deposited.
   */
  get mailbox(): DatabaseMailbox | null {
    // Its status and whenIdle() count the deposits of the writes queued in this task.
    this.#batch?.flush();
    return this.#mailboxBinding();
  }

  /** @internal openDatabase hands over the key material the mailbox keys are derived from. */
  useMailbox(material: Uint8Array): void {
    if (this.#mailbox !== null || this.#closed) return;
    const held = attachMailbox(this.transport, this.#host, material, this.#host);
    this.#mailbox = held;
    // The access itself, not a binding: the host listens to its offers (see #mailboxBinding).
    if (held !== null && typeof (held as Partial<MailboxBinding>).noteUpdate !== 'function') this.#bit(MAILBOX_HELD, true);
  }

  /**
   * @internal Joins the topic and runs a session per connection until closed. The join starts
   * on the next macrotask, so a subscription made right after `await openDatabase()` sees every
   * network event, including the first `peer-connected` and an early `error`.
   */
  start(): void {
    // The platform's macrotask. One small closure waits for it, not a suspended async function
    // with its promises: while thousands of replicas open at once, a turn is long, and what waits
    // through it is promoted to the old generation and dies there (BENCHMARKS.md § Issue 12,
    // Session 13 (rssconn)). A database closed meanwhile does not join (close() had nothing to
    // wait for).
    this.#host.nextTurn(() => this.#join());
    this.#monitor.start();
  }

  #join(): void {
    if (this.#closed) return;
    const run = (this.#network = this.#run());
    // #run reports its own errors: it never rejects.
    void run.then(() => {
      if (this.#network === run) this.#network = null;
    });
  }

  async #run(): Promise<void> {
    const leaveByDisconnect = this.#ownsTransport && !(this.transport instanceof MultiTransport);
    try {
      const connections = await this.transport.connect(this.topic, leaveByDisconnect ? {} : { signal: (this.#abort = new AbortController()).signal });
      // A stream that can be listened to (core's AsyncQueue: every built-in transport) is, so an
      // open database holds a listener rather than a loop suspended in `for await` (ARCHITECTURE
      // § Memory of an idle replica): the host's prototype methods (onItem, onEnd), no promise
      // or closure per database; this function returns at once.
      if (isListenable(connections)) {
        this.#listening = true;
        connections.listen(this.#host);
        return;
      }
      for await (const conn of connections) this.#onConnection(conn);
    } catch (error) {
      if (!this.#closed) this.#report(error);
    }
  }

  #onConnection(conn: Connection): void {
    if (this.#closed) {
      void conn.close().catch(() => undefined);
      return;
    }
    this.#attach(conn);
  }

  /** The connection stream ended (listened to: see {@link #run}). */
  #onStreamEnd(error: unknown): void {
    if (error !== undefined && !this.#closed) this.#report(error);
    this.#listening = false;
    const ended = this.#streamEnded;
    this.#streamEnded = null;
    ended?.();
  }

  #attach(conn: Connection): void {
    const previous = this.#sessions.find(conn, this.transport.name);
    if (previous) {
      // One session per peer: a reconnect replaces the old connection.
      this.#sessions.delete(previous, this.transport.name);
      this.#onSessionClosed(previous, 'replaced by a new connection');
      if (!previous.closed) (this.#retiring ??= new Set()).add(previous);
      void previous.close().catch(() => undefined);
    }
    const session = new PeerSession(conn, this.#host);
    this.#sessions.set(session, this.transport.name);
    this.#router.attach(session);
    this.events.publish({ type: 'peer-connected', peerId: conn.peerId, topic: this.topic });
    if (this.#onAttach !== null) for (const onAttach of [...this.#onAttach]) onAttach(session);
    session.start();
  }

  /** A session told its replica id: if another session reaches that replica, one becomes a standby. */
  #onReplica(session: PeerSession): void {
    if (session.replicaId === this.replicaId) {
      // Ourselves, through some loop (two transports of this database meeting): nothing to sync.
      void session.close().catch(() => undefined);
      return;
    }
    const park = this.#replicas.bind(session);
    if (park === null) return;
    this.#sessions.delete(park, this.transport.name);
    (this.#standby ??= new Set()).add(park);
    this.#router.detach(park);
    this.events.publish({ type: 'peer-disconnected', peerId: park.peerId, topic: this.topic, reason: 'standby: a better path reaches this replica' });
    this.#checkWaiters();
  }

  #onSessionClosed(session: PeerSession, reason?: string): void {
    const ended = (this.#ended ??= new WeakSet());
    if (ended.has(session)) return;
    ended.add(session);
    this.#router.detach(session);
    addTotals((this.#totals ??= { ...NO_TOTALS }), session.stats);
    const promote = this.#replicas.unbind(session);
    if (this.#standby?.delete(session)) return; // a standby's end is no news: its replica is still connected
    this.#sessions.delete(session, this.transport.name);
    if (session.awarenessClients.length > 0) {
      this.#removeAwareness([...session.awarenessClients], AWARENESS_DISCONNECT_ORIGIN);
    }
    this.events.publish(
      reason === undefined
        ? { type: 'peer-disconnected', peerId: session.peerId, topic: this.topic }
        : { type: 'peer-disconnected', peerId: session.peerId, topic: this.topic, reason },
    );
    if (promote !== null && !this.#closed && this.#standby?.delete(promote)) {
      // The replica's standby path takes over: it re-exchanges state, so updates written while
      // it waited (and any lost in flight on the path that ended) reach the peer.
      this.#sessions.set(promote, this.transport.name);
      this.#router.attach(promote);
      promote.resync();
      this.events.publish({ type: 'peer-connected', peerId: promote.peerId, topic: this.topic });
    }
    this.#checkWaiters();
  }

  // ---- doc and awareness hooks --------------------------------------------------------------

  #onUpdate(update: Uint8Array, origin: unknown, tr: Y.Transaction): void {
    // The persistence binding's listener, folded into this one (it ignores its own origins).
    this.#persistence.noteUpdate(update, origin);
    if (origin === PERSISTENCE_ORIGIN) return;
    // The mailbox hook's listener, folded into this one (one closure per database, not two); while
    // the access is held, a bit remembers that a local write happened.
    const mailbox = this.#mailbox;
    if (mailbox !== null) {
      if ((this.#bits & MAILBOX_HELD) === 0) (mailbox as MailboxBinding).noteUpdate(origin, tr);
      else if ((this.#bits & MAILBOX_DIRTY) === 0 && isMailboxWrite(origin, tr)) this.#bit(MAILBOX_DIRTY, true);
    }
    if (origin instanceof PeerSession) {
      this.#remoteUpdates++;
      (this.#rates ??= new RateWindow(this.#clock0, 2)).add(1, performance.now(), REMOTE_RATE);
    } else {
      // A batch of queued writes is one update but counts as the writes it holds.
      const writes = this.#batchWrites;
      this.#batchWrites = 1;
      this.#localSeq += writes;
      (this.#rates ??= new RateWindow(this.#clock0, 2)).add(writes, performance.now(), LOCAL_RATE);
    }
    if (this.#sessions.size === 0) return;
    // Never echo an update to the peer it came from; one sealed broadcast per group.
    this.#router.route(update, origin, this.#sessions.values());
  }

  /** Applies queued puts and deletes as one transaction (see {@link WriteBatch}). */
  #applyBatch(writes: PendingWrite[]): void {
    this.#batchWrites = writes.length;
    try {
      this.#nodes().apply(writes, this);
    } finally {
      this.#batchWrites = 1;
    }
  }

  /**
   * The doc's 'afterTransaction' listener for node events, while there is one: from a subscription
   * to {@link events} until a transaction finds no subscriber left. An idle database nobody
   * subscribed to holds no listener (and lib0 no Set) for it (ARCHITECTURE § Memory of an idle
   * replica).
   */
  #nodeEvents: ((tr: Y.Transaction) => void) | null = null;

  /** A subscription to {@link events} was made: node events are needed (the listener is made now). */
  #listenNodeEvents(): void {
    if (this.#nodeEvents !== null || this.#closed) return;
    // The maps exist before the first transaction the listener sees (a root type a peer's update
    // made is replaced by the map at its first getMap, and that transaction's changes are keyed by
    // the replaced one).
    this.#nodes();
    const listener = (tr: Y.Transaction): void => this.#onTransaction(tr);
    this.#nodeEvents = listener;
    this.#doc.on('afterTransaction', listener);
  }

  #stopNodeEvents(): void {
    if (this.#nodeEvents === null) return;
    this.#doc.off('afterTransaction', this.#nodeEvents);
    this.#nodeEvents = null;
  }

  #onTransaction(tr: Y.Transaction): void {
    if (this.events.subscriberCount === 0) {
      // Nobody listens any more: stop until the next subscription (lib0 emits from a copy of
      // its listeners, so leaving during the emission is safe).
      this.#stopNodeEvents();
      return;
    }
    if (tr.origin === PERSISTENCE_ORIGIN) return;
    const origin = tr.local ? 'local' : 'remote';
    for (const change of this.#nodes().changes(tr)) {
      if (change.deleted) {
        this.events.publish({ type: 'node-delete', id: change.id, origin });
      } else {
        const data = this.#nodes().get(change.id);
        if (data) this.events.publish({ type: 'node-upsert', id: change.id, data, origin });
      }
    }
  }

  #onAwareness(changes: AwarenessChanges, origin: unknown): void {
    if (origin instanceof PeerSession) {
      for (const id of [...changes.added, ...changes.updated]) origin.addAwarenessClient(id);
      for (const id of changes.removed) origin.removeAwarenessClient(id);
    }
    // Removals we make because a peer left are local bookkeeping, not news for other peers.
    if (origin === AWARENESS_DISCONNECT_ORIGIN || this.#sessions.size === 0) return;
    // A change that came from a peer over a broadcast channel (a relay topic) is not passed on to
    // the other members of that channel: the relay pairs every member with every other, and the
    // peer sent its awareness to each of them itself, as it does its updates (UpdateRouter.route).
    // In a mesh of k replicas on one relay, passing it on made each change k − 2 extra sealed
    // frames at every receiver, received and ignored as already known (BENCHMARKS.md § Issue 12,
    // Session 13 (rssconn)).
    const from = origin instanceof PeerSession ? origin.broadcastGroup : null;
    let targets = 0;
    for (const session of this.#sessions.values()) if (session !== origin && (from === null || session.broadcastGroup !== from)) targets++;
    if (targets === 0) return;
    const clients = [...changes.added, ...changes.updated, ...changes.removed];
    if (clients.length === 0) return;
    const update = awarenessProtocol.encodeAwarenessUpdate(this.awareness, clients);
    for (const session of this.#sessions.values()) if (session !== origin && (from === null || session.broadcastGroup !== from)) session.sendAwareness(update);
  }

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
    if (this.#waiters === null) return;
    for (const w of [...this.#waiters]) if (this.#allSynced(w.minPeers)) w.resolve();
  }

  /** Removes awareness states; an app's awareness listener that throws is reported, not let out of close() or a session's end. */
  #removeAwareness(clients: number[], origin: unknown): void {
    try {
      awarenessProtocol.removeAwarenessStates(this.awareness, clients, origin);
    } catch (error) {
      this.#report(error);
    }
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
 * Opens (or creates) a database on a {@link Platform}; `openDatabase` of each entry point of
 * `@rhizome/sync` is this function bound to the Node or browser platform.
 *
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
export async function openDatabaseOn(platform: Platform, options: DatabaseOptions): Promise<Database> {
  if (options === null || typeof options !== 'object') throw new InvalidConfigError('options', 'must be an object');
  const { id, path, secret, store: givenStore } = options;
  if (typeof id !== 'string' || id.length === 0) throw new InvalidConfigError('id', 'must be a non-empty string');
  if (path !== undefined && (typeof path !== 'string' || path.length === 0)) throw new InvalidConfigError('path', 'must be a non-empty string');
  if (givenStore !== undefined) {
    if (path !== undefined) throw new InvalidConfigError('store', 'give either path or store, not both');
    if (givenStore === null || typeof givenStore !== 'object' || typeof givenStore.append !== 'function' || typeof givenStore.load !== 'function') {
      throw new InvalidConfigError('store', 'must be a DocStore');
    }
  }
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
  const health = resolveHealthOptions(options.health);
  // Every option is checked before a transport is made: a transport this database would own
  // may hold something from its construction on (a memory transport's peer id in its hub).
  const readOnly = options.readOnly ?? false;
  if (typeof readOnly !== 'boolean') throw new InvalidConfigError('readOnly', 'must be a boolean');
  if (readOnly && (path === undefined || path === ':memory:')) throw new InvalidConfigError('readOnly', 'needs a file path');
  const exclusive = options.exclusive ?? false;
  if (typeof exclusive !== 'boolean') throw new InvalidConfigError('exclusive', 'must be a boolean');
  if (exclusive && readOnly) throw new InvalidConfigError('exclusive', 'not with readOnly (an exclusive database writes)');
  if (exclusive && givenStore !== undefined) throw new InvalidConfigError('exclusive', 'applies to the store opened from path, not to a given store');
  let transport: Transport;
  let owns: boolean;
  // Errors the transports it makes handle by themselves (lost sessions, failed reconnects) become
  // `error` events of the database (once it exists); an onError of the app's configuration still
  // gets them too.
  const errors: ErrorRoute[] = [];
  const given = options.transport;
  // Drawn before the transport: a relay transport this database makes takes it as its peer id.
  const replicaId = newReplicaId();
  if (Array.isArray(given)) {
    if (given.length === 0) throw new InvalidConfigError('transport', 'must list at least one transport');
    given.forEach((item: unknown, i) => {
      if (item === null || typeof item !== 'object') throw new InvalidConfigError(`transport[${i}]`, 'must be a Transport or a transport configuration');
      if (!isTransport(item) && (item as Partial<TransportConfig>).encryption === false) {
        throw new InvalidConfigError(`transport[${i}].encryption`, 'sealing cannot be turned off: every frame a database sends is sealed');
      }
    });
    const parts: TransportPart[] = [];
    try {
      for (const item of given as Array<Transport | Partial<TransportConfig>>) {
        if (isTransport(item)) parts.push({ transport: item, owned: false });
        else parts.push({ transport: platform.createTransport({ ...item, onError: forwardTransportErrors(errors, item.onError) }), owned: true });
      }
    } catch (error) {
      // A configuration the transport itself refuses: the ones already made for this database go.
      await Promise.all(parts.filter((part) => part.owned).map((part) => part.transport.disconnect().catch(() => undefined)));
      throw error;
    }
    transport = new MultiTransport(parts, forwardTransportErrors(errors, undefined));
    owns = true;
  } else if (given === undefined) {
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
    // A relay transport made for this database alone has the replica id (hex) as its peer id,
    // unless the configuration names one: so a remote session keeps one string for the peer's
    // relay id and its replica id (PeerSession: the same string object; an idle replica holds a
    // session per remote replica). The replica id stays sealed where it proves something (the
    // REPLICA message: only key holders can claim one); as a relay peer id it is as random and
    // as public as the id the transport would have drawn.
    const config = given.mode === 'relay' && given.peerId === undefined ? { ...given, peerId: flatHex(replicaId) } : given;
    transport = platform.createTransport({ ...config, onError: forwardTransportErrors(errors, given.onError) });
    // The implementation itself, not core's lazy wrapper (relay mode; see loadedTransport).
    transport = await loadedTransport(transport);
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
    store = givenStore ?? (await platform.openStore(path, exclusive ? { readOnly, exclusive } : { readOnly }));
  } catch (error) {
    if (owns) await transport.disconnect().catch(() => undefined);
    throw error;
  }
  let db: Database;
  try {
    db = new Database(
      id,
      store,
      transport,
      owns,
      sealer,
      limits,
      options.persistence ?? {},
      { macrotask: platform.macrotask, ownsStore: givenStore === undefined },
      health,
      readOnly,
      replicaId,
    );
  } catch (error) {
    if (givenStore === undefined) store.close();
    if (owns) await transport.disconnect().catch(() => undefined);
    throw error;
  }
  for (const route of errors) route.db = db;
  try {
    db.useMailbox(material);
    db.start();
  } catch (error) {
    // (A transport's mailbox access that throws.) The database exists: closing it releases all
    // it holds — the awareness's place in the liveness ticker (a timer that keeps the process
    // alive), the store watch, the store, an owned transport.
    await db.close().catch(() => undefined);
    throw error;
  }
  return db;
}

/** A database's rarely set state (see `Database.#rare`). */
interface DatabaseRare {
  standby: Set<PeerSession> | null;
  ended: WeakSet<PeerSession> | null;
  retiring: Set<PeerSession> | null;
  onAttach: Set<(session: PeerSession) => void> | null;
  onClose: Set<(error: Error) => void> | null;
  abort: AbortController | null;
  totals: SessionTotals | null;
  waiters: SyncWaiter[] | null;
  closing: Promise<void> | null;
  storageOpen: boolean;
  streamEnded: (() => void) | null;
  network: Promise<void> | null;
}

function newRare(): DatabaseRare {
  return { standby: null, ended: null, retiring: null, onAttach: null, onClose: null, abort: null, totals: null, waiters: null, closing: null, storageOpen: false, streamEnded: null, network: null };
}

/** A database host's limits (see `DatabaseHost`). */
interface HostLimits {
  readonly maxFrameBytes: number;
  readonly maxMessageBytes: number;
  readonly maxQueuedBytes: number;
  readonly networked: boolean;
}

/** The bytes of a lowercase hex string (the replica id). */
function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Limits records by value: databases opened with the same limits share one (a process holds thousands). */
const limitsByValue = new Map<string, HostLimits>();

function sharedLimits(l: HostLimits): HostLimits {
  const key = `${l.maxFrameBytes} ${l.maxMessageBytes} ${l.maxQueuedBytes} ${l.networked}`;
  let shared = limitsByValue.get(key);
  if (shared === undefined) {
    shared = Object.freeze({ ...l });
    // A few sets per process, usually; bounded all the same.
    if (limitsByValue.size >= 64) limitsByValue.clear();
    limitsByValue.set(key, shared);
  }
  return shared;
}

/** Where the transports a database made report their errors: the database, once it exists. */
/** Where one transport the database makes reports the errors it handles by itself: the database (set once it exists), then the app's own `onError`. */
interface ErrorRoute {
  db: Database | null;
  readonly app: ((error: Error) => void) | undefined;
}

/** {@link forwardTransportErrors}'s function, bound to a route: one function for every transport. */
function forwardTransportError(this: ErrorRoute, error: Error): void {
  const db = this.db;
  if (db !== null && !db.closed) db.events.publish({ type: 'error', error });
  this.app?.(error);
}

/**
 * The `onError` handed to a transport the database makes: the database's `error` event first (an
 * app handler that throws must not hide the error from `db.events`), then the app's own. A bound
 * function over a route of two fields (added to `routes`, whose `db` openDatabase sets): it keeps
 * neither `openDatabase`'s scope (options included) nor a closure's context (~0.05 KiB less per
 * database than a closure over a shared record).
 */
function forwardTransportErrors(routes: ErrorRoute[], app: ((error: Error) => void) | undefined): (error: Error) => void {
  const route: ErrorRoute = { db: null, app };
  routes.push(route);
  return forwardTransportError.bind(route);
}

/** Yjs's default garbage-collection filter (collect everything), one function for every database instead of a closure each. */
const gcEverything = (): boolean => true;

/** Traffic and error counters of sessions (see {@link PeerSession.stats}). */
type SessionTotals = PeerSession['stats'];

/** Counters before any session ended (never modified: copied). */
const NO_TOTALS: Readonly<SessionTotals> = Object.freeze({ framesSent: 0, framesReceived: 0, bytesSent: 0, bytesReceived: 0, decryptErrors: 0, collapses: 0 });

function addTotals(total: SessionTotals, add: Readonly<SessionTotals>): void {
  total.framesSent += add.framesSent;
  total.framesReceived += add.framesReceived;
  total.bytesSent += add.bytesSent;
  total.bytesReceived += add.bytesReceived;
  total.decryptErrors += add.decryptErrors;
  total.collapses += add.collapses;
}
