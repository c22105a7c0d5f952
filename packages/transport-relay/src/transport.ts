import {
  AbortError,
  AsyncQueue,
  ConnectFailedError,
  ConnectionClosedError,
  DEFAULT_NETWORK_MAX_MESSAGE_SIZE,
  DEFAULT_TIMEOUT_MS,
  FrameTooLargeError,
  InvalidConfigError,
  resolveTlsOptions,
  QueuedConnection,
  RelayRejectedError,
  type RhizomeError,
  TimeoutError,
  TopicAlreadyJoinedError,
  TransportClosedError,
  assertTopic,
  flatHex,
  joinTicker,
  rareRecordIsEmpty,
  leaveTicker,
  normalizeRelayUrl,
  randomId,
  topicToHex,
  type Connection,
  type ConnectOptions,
  type PeerInfo,
  type TopicBroadcast,
  type TopicHash,
  type Transport,
} from '@rhizome/core';
import { backoffDelayMs, RelayRotation } from './failover.js';
import { DEFAULT_INBOUND_BOUNDS, WINDOW_ANNOUNCE_DELAY_MS, WindowedConnection, type SendWindow, inboundOverflow, messageCost, receiveCredit, type InboundBounds } from './flow.js';
import { RelayTopicBroadcast } from './broadcast.js';
import { RelayMailbox, type MailboxLinkHost } from './mailbox.js';
import { defaultImplementation, openLink, type Link, type LinkHandler, type LinkTlsOptions, type WebSocketImplementation } from './link.js';
import { SendPacer } from './pacer.js';
import { frameBytes } from './frame-slab.js';
import {
  CloseCode,
  DATA_HEADER_BYTES,
  FrameType,
  MAX_PEER_ID_BYTES,
  MAX_TOKEN_BYTES,
  closeCodeName,
  decodeLimits,
  decodePeers,
  encodeDataFrame,
  encodeWindow,
  encodeHello,
  encodeLookup,
  encodePing,
  encodeTopicFrame,
  fromUtf8,
  isDataFrame,
  isErrorFrame,
  isJoinedFrame,
  isLimitsFrame,
  isWindowFrame,
  LIMITS_FLAG_WINDOW,
  WINDOW_FRAME_BYTES,
  isPairFrame,
  isPeerJoinedFrame,
  isPeersFrame,
  isFatalCloseCode,
  isWelcomeFrame,
  readU16,
  readU32,
  RelayErrorCode,
  utf8,
} from './protocol.js';

/** Reconnection policy: exponential backoff with jitter. */
export interface ReconnectOptions {
  /** First delay after a lost session, in ms. Default 250. */
  initialDelayMs?: number;
  /** Upper bound of the delay, in ms. Default 10000. */
  maxDelayMs?: number;
  /** Growth per failed attempt. Default 2. */
  factor?: number;
}

/** Options of {@link RelayTransport}. */
export interface RelayTransportOptions {
  /**
   * Relay URL: `ws://`, `wss://`, or a bare host (`wss://host:443`); or a list of relays that
   * serve the same topics (instances of one scaled-out relay): the transport sticks to one
   * that works and fails over to the next when it is refused or lost.
   */
  url: string | readonly string[];
  /** This peer's id, at most 64 UTF-8 bytes; default random. Two live sessions with one id replace each other. */
  peerId?: string;
  /** Shared access token, if the relay requires one. */
  token?: string;
  /** Bound on each connection attempt and on calls waiting for a session; default 30000 ms. */
  timeoutMs?: number;
  /** TLS options for `wss://` in Node, e.g. `{ ca }` to trust a self-signed relay. */
  tls?: LinkTlsOptions;
  /** Largest message a Connection sends; default 1 MiB (capped by the relay's frame limit). */
  maxMessageSize?: number;
  /** Reconnection backoff. */
  reconnect?: ReconnectOptions;
  /** Socket bytes buffered before `send` waits; default 4 MiB. */
  highWaterMark?: number;
  /**
   * Liveness: after this long without a frame from the relay the client sends PING, and after
   * as long again without any frame it drops the socket and reconnects (a half-open TCP link
   * is otherwise never noticed). Default 25000 ms; 0 disables.
   */
  heartbeatIntervalMs?: number;
  /**
   * Unread messages one Connection may hold; default 8192. A Connection past this (or past
   * `inboundMaxBytes`) is closed on its own with `ERR_SLOW_CONSUMER`; the socket and every other
   * Connection carry on (see `flow.ts`).
   */
  inboundHighWaterMark?: number;
  /** Unread bytes one Connection may hold; default 32 MiB. See `inboundHighWaterMark`. */
  inboundMaxBytes?: number;
  /** Force the WebSocket implementation; default `net` in Node (`ws` before 20.16), the global WebSocket elsewhere. */
  implementation?: WebSocketImplementation;
  /** Told about errors that do not reach a caller: a lost session, a rejection by the relay. */
  onError?: (error: RhizomeError) => void;
  /** Use the relay's sealed mailbox when it offers one (`transport.mailbox`). Default true. */
  mailbox?: boolean;
}

/** Where the transport's link to the relay stands. */
export type RelayTransportState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed' | 'failed';

/** How long `disconnect()` waits for the relay to answer the close before dropping the socket. */
const CLOSE_WAIT_MS = 2000;

const DEFAULTS = {
  initialDelayMs: 250,
  maxDelayMs: 10_000,
  factor: 2,
  highWaterMark: 4 * 1024 * 1024,
  heartbeatIntervalMs: 25_000,
};

/** A transport's settings from its options (everything but the URL, the peer id and onError). */
interface RelaySettings {
  readonly token: Uint8Array | null;
  readonly timeoutMs: number;
  readonly tls: LinkTlsOptions | undefined;
  readonly reconnect: Required<ReconnectOptions>;
  readonly highWaterMark: number;
  readonly inbound: InboundBounds;
  readonly heartbeatIntervalMs: number;
  readonly implementation: WebSocketImplementation;
}

/** The default settings of each WebSocket implementation, made once (frozen: shared by every transport of the process). */
const defaultSettings = new Map<WebSocketImplementation, RelaySettings>();

/**
 * `s`, or the shared record of the defaults when `s` equals it: a process with thousands of
 * transports keeps one (the record with its two nested ones is ~0.2 KiB).
 */
function relaySettings(s: RelaySettings): RelaySettings {
  const isDefault =
    s.token === null &&
    s.tls === undefined &&
    s.timeoutMs === DEFAULT_TIMEOUT_MS &&
    s.reconnect.initialDelayMs === DEFAULTS.initialDelayMs &&
    s.reconnect.maxDelayMs === DEFAULTS.maxDelayMs &&
    s.reconnect.factor === DEFAULTS.factor &&
    s.highWaterMark === DEFAULTS.highWaterMark &&
    s.inbound.maxMessages === DEFAULT_INBOUND_BOUNDS.maxMessages &&
    s.inbound.maxBytes === DEFAULT_INBOUND_BOUNDS.maxBytes &&
    s.heartbeatIntervalMs === DEFAULTS.heartbeatIntervalMs;
  if (!isDefault) return s;
  let shared = defaultSettings.get(s.implementation);
  if (shared === undefined) {
    shared = Object.freeze({ ...s, reconnect: Object.freeze({ ...s.reconnect }), inbound: DEFAULT_INBOUND_BOUNDS });
    defaultSettings.set(s.implementation, shared);
  }
  return shared;
}

/** @internal A topic this transport joined (connect) or announced. */
interface TopicState {
  /** The transport (here, not in each of the topic's Connections: one field per topic, not per peer). */
  readonly owner: RelayTransport;
  /**
   * The topic's 32 bytes as a string of one char per byte ({@link topicKey}): ~50 B of heap, where
   * a `Uint8Array` of them is ~0.2 KiB with its buffer (ARCHITECTURE § Memory of an idle replica).
   * Also the key of the transport's maps of further topics. Bytes are made from it for a frame
   * (JOIN, LEAVE, ANNOUNCE: once per session) and for each read of a Connection's `topic`.
   */
  readonly topic: string;
  joined: boolean;
  /** The connect() iterable; null for announce-only topics. */
  queue: AsyncQueue<Connection> | null;
  /** The relay's id of the topic in the current session; 0 before JOINED. */
  topicId: number;
  /**
   * The topic's Connections (a peer's newest: see #onPeerJoined), by the remote's relay session:
   * a list of exactly them while at most {@link PEER_LIST_LIMIT} (replaced, never changed in
   * place, so a list taken stays as it was), a Map past that (see {@link peerOf}).
   */
  peers: RelayConnection[] | Map<number, RelayConnection>;
  /** Waiters for the relay's acknowledgement ({@link NO_ACKS} while none waits). */
  acks: Array<() => void>;
  /** Removes the listener on connect()'s abort signal (a reused signal must not collect them). */
  detachSignal: (() => void) | null;
  /** The topic's BROADCAST in the current session (made at JOINED). */
  broadcast: RelayTopicBroadcast<TopicState> | null;
}

interface SessionWaiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** A topic's bytes as one flat string of one char per byte (see `TopicState.topic`). */
function topicKey(topic: Uint8Array): string {
  return String.fromCharCode.apply(null, topic as unknown as number[]);
}

/** The bytes of a topic kept as {@link topicKey}: a new array per call. */
function topicBytes(key: string): Uint8Array {
  const bytes = new Uint8Array(key.length);
  for (let i = 0; i < key.length; i++) bytes[i] = key.charCodeAt(i);
  return bytes;
}

/** True if `key` ({@link topicKey}) holds exactly the bytes of `topic`. */
function isTopic(key: string, topic: Uint8Array): boolean {
  if (key.length !== topic.length) return false;
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) !== topic[i]) return false;
  return true;
}

/** A JOIN, LEAVE or ANNOUNCE frame of the topic of `state`. */
function topicFrame(type: typeof FrameType.JOIN | typeof FrameType.LEAVE | typeof FrameType.ANNOUNCE, state: TopicState): Uint8Array {
  return encodeTopicFrame(type, topicBytes(state.topic));
}

/** Largest WebSocket frame header a client adds (2 + 8 length bytes + 4 mask bytes). */
const WS_FRAME_HEADER_MAX = 14;

/** Sends the WINDOW(0) held for each Connection (see `RelayTransport.#oweWindow`). */
function sayWindow(owed: RelayConnection[]): void {
  for (const conn of owed) conn.announceWindow();
}

/** One remote peer on one topic, multiplexed on the transport's single socket. */
export class RelayConnection extends WindowedConnection implements Connection {
  /** @internal The relay session number of the remote peer. */
  readonly remoteSession: number;
  readonly #state: TopicState;
  /** The receiving side of the window: credit the reader took and not granted back yet (flow.ts {@link receiveCredit}). */
  #consumed = 0;

  /** @internal */
  constructor(state: TopicState, remoteSession: number, peerId: string) {
    super(peerId);
    this.#state = state;
    this.remoteSession = remoteSession;
  }

  /**
   * The topic's bytes: a getter, not a field (an idle replica holds one Connection per remote
   * replica), which makes a copy from the topic's state at each read (the state keeps them as a
   * string: `TopicState.topic`; the sync layer does not read it).
   */
  get topic(): Uint8Array {
    return topicBytes(this.#state.topic);
  }

  /**
   * The relay session this Connection belongs to: the transport's current one. An open
   * Connection is always of the current session (a lost session closes the topic's Connections
   * as the generation moves on, before the next session's peers arrive), and every frame it
   * sends is checked against the generation read here while open (a send that waits across a
   * lost session is refused, as before); so no field per Connection.
   */
  private get generation(): number {
    return this.owner.generation;
  }

  /**
   * The topic's broadcast in this connection's relay session (see core `TopicBroadcast`); undefined
   * once closed. A getter, not a field: while the Connection is open its topic's broadcast is its
   * session's (a lost session closes the topic's Connections before the next session's JOINED
   * makes a new broadcast).
   */
  get broadcast(): TopicBroadcast | undefined {
    return this.closed ? undefined : (this.#state.broadcast ?? undefined);
  }

  /** (A TypeScript-private getter, not `#`: a class with `#` methods costs each instance a slot, see ARCHITECTURE § Memory.) */
  private get owner(): RelayTransport {
    return this.#state.owner;
  }

  /** `'relay'` (a getter: not a field of every Connection). */
  get transport(): string {
    return 'relay';
  }

  protected sendFrame(data: Uint8Array): Promise<void> {
    return this.owner.sendData(this.#state, this.remoteSession, this.generation, data, this.sendWindow);
  }

  protected override trySendFrame(data: Uint8Array): boolean {
    return this.owner.trySendData(this.#state, this.remoteSession, this.generation, data, this.sendWindow);
  }

  /** @internal Says WINDOW(0) to the remote: we grant credit (flow.ts). */
  announceWindow(): void {
    if (!this.closed) this.owner.sendWindowGrant(this.#state, this.remoteSession, this.generation, 0);
  }

  /** The reader took a message: grant its credit back to the sender once enough accumulated. */
  protected override consumed(message: Uint8Array): void {
    const consumed = receiveCredit(this.#consumed, message.length);
    this.#consumed = consumed > 0 ? consumed : 0;
    const grant = consumed < 0 ? -consumed : 0;
    if (grant > 0 && !this.closed) this.owner.sendWindowGrant(this.#state, this.remoteSession, this.generation, grant);
  }

  protected closeRemote(): Promise<void> {
    this.owner.sendClosePeer(this.#state, this.remoteSession, this.generation);
    return Promise.resolve();
  }

  /** Closed from either side: out of the topic's tables (a method, not a closure per Connection). */
  protected override onClosed(): void {
    this.closeWindow(new ConnectionClosedError());
    const state = this.#state;
    dropPeer(state, this);
  }
}

/** Connections a topic keeps in a list before it keeps them in a Map by relay session (see `TopicState.peers`). */
export const PEER_LIST_LIMIT = 16;

/** A topic without Connections: one shared empty list (frozen: pushing to it would throw). */
const NO_PEERS: RelayConnection[] = Object.freeze([]) as unknown as RelayConnection[];

/**
 * The topic's Connection to the remote's relay session `session`. A list of up to 16 is looked
 * through (an idle replica's topic holds one Connection per remote replica, and a Map's table is
 * ~42 B per entry against a list's 8); past that, a Map.
 */
function peerOf(state: TopicState, session: number): RelayConnection | undefined {
  const peers = state.peers;
  if (!Array.isArray(peers)) return peers.get(session);
  for (let i = 0; i < peers.length; i++) if (peers[i]!.remoteSession === session) return peers[i];
  return undefined;
}

function peerOfTopic(state: TopicState | undefined, session: number): RelayConnection | undefined {
  return state === undefined ? undefined : peerOf(state, session);
}

/** The topic's Connections, as a list not changed afterwards (safe to iterate while they close). */
function peerList(state: TopicState): readonly RelayConnection[] {
  const peers = state.peers;
  return Array.isArray(peers) ? peers : [...peers.values()];
}

/** Adds `conn`, replacing the topic's Connection to the same relay session if there is one. */
function putPeer(state: TopicState, conn: RelayConnection): void {
  const peers = state.peers;
  if (!Array.isArray(peers)) {
    peers.set(conn.remoteSession, conn);
    return;
  }
  const at = peers.findIndex((c) => c.remoteSession === conn.remoteSession);
  if (at >= 0) {
    const next = peers.slice();
    next[at] = conn;
    state.peers = next;
  } else if (peers.length < PEER_LIST_LIMIT) {
    // A list of exactly its entries (push would grow it to 17 slots), replaced rather than changed.
    state.peers = peers.concat(conn);
  } else {
    const map = new Map<number, RelayConnection>();
    for (const c of peers) map.set(c.remoteSession, c);
    map.set(conn.remoteSession, conn);
    state.peers = map;
  }
}

/** Removes `conn` if it is still the topic's Connection to its relay session. */
function dropPeer(state: TopicState, conn: RelayConnection): void {
  const peers = state.peers;
  if (!Array.isArray(peers)) {
    if (peers.get(conn.remoteSession) === conn) peers.delete(conn.remoteSession);
    return;
  }
  const at = peers.indexOf(conn);
  if (at < 0) return;
  state.peers = peers.length === 1 ? NO_PEERS : peers.filter((c) => c !== conn);
}

/** A topic's acknowledgement waiters while none waits: one shared empty list (frozen: pushing to it would throw). */
const NO_ACKS: Array<() => void> = Object.freeze([]) as unknown as Array<() => void>;

/** No session waiters: one shared empty list (frozen: pushing to it would throw). */
const NO_SESSION_WAITERS: SessionWaiter[] = Object.freeze([]) as unknown as SessionWaiter[];

function randomPeerId(): string {
  // flatHex: one flat string, not a rope of 16 pieces kept for the transport's life.
  return `relay-${flatHex(randomId(16))}`;
}

function positiveInt(value: number | undefined, field: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new InvalidConfigError(field, 'must be a positive number');
  return value;
}

/**
 * Topic frames (JOIN / ANNOUNCE) a session sends right behind its HELLO; more wait for WELCOME. A
 * clustered relay holds at most 64 frames of a connection while its router checks the HELLO.
 */
const EARLY_TOPICS = 32;

/** Bits of the transport's `#sessionBits`: WELCOME came; a frame came since the last liveness tick; a PING awaits any frame. */
const WELCOMED = 1;
const SEEN = 2;
const PINGED = 4;

/** Bits of the transport's `#bits`: the session loop runs; disconnected; the relay forwards WINDOW. */
const RUNNING = 1;
const CLOSED = 2;
const RELAY_WINDOW = 4;

type Lookups = Map<number, { resolve: (peers: PeerInfo[]) => void; reject: (e: unknown) => void }>;

/** What a {@link RelayTransport} holds only at times (see its `#rare`); null or undefined = not held. */
interface TransportRare {
  moreTopics: Map<string, TopicState> | null;
  moreTopicsById: Map<number, TopicState> | null;
  lookups: Lookups | null;
  sessionWaiters: SessionWaiter[] | null;
  helloTimer: ReturnType<typeof setTimeout> | null;
  early: Map<TopicState, boolean> | null;
  wake: (() => void) | null;
  fatal: RhizomeError | null;
  lastError: RhizomeError | null;
  owedWindows: RelayConnection[] | null;
  windowTimer: ReturnType<typeof setTimeout> | null;
}

function newTransportRare(): TransportRare {
  return { moreTopics: null, moreTopicsById: null, lookups: null, sessionWaiters: null, helloTimer: null, early: null, wake: null, fatal: null, lastError: null, owedWindows: null, windowTimer: null };
}

/**
 * The relay transport: one WebSocket to a Rhizome relay multiplexes every topic and peer;
 * each remote peer on a joined topic is one {@link Connection}, exactly one per pair.
 *
 * When the socket is lost the transport reconnects by itself (exponential backoff with
 * jitter) and rejoins its topics: the Connections of the lost session close, and new ones
 * are yielded on the same `connect()` iterables, so the sync layer resyncs by state vectors.
 * Calls that need the relay (`announce`, `lookup`, `connect`) wait for a session at most
 * `timeoutMs`, then reject with `ERR_CONNECT_FAILED` naming the URL. A relay refusal that
 * reconnecting cannot fix (bad token, protocol version, peer id taken over) ends the
 * iterables with `ERR_RELAY_REJECTED`.
 *
 * @example
 * ```ts
 * const transport = new RelayTransport({ url: 'wss://relay.example.com' });
 * for await (const conn of await transport.connect(deriveTopic(id))) {
 *   void conn.send(new Uint8Array([1]));
 * }
 * ```
 */
export class RelayTransport implements Transport, LinkHandler {
  /** `'relay'` (a getter: not a field of every transport). */
  get name(): 'relay' {
    return 'relay';
  }
  /** The relay's URL, or the rotation through a list of them (failover.ts). */
  readonly #relays: RelayRotation | string;
  /** Failed attempts since the last session that came up (one relay; a list's rotation counts its own). */
  #failures = 0;
  /** This peer's id, as other peers see it. */
  readonly peerId: string;
  readonly maxMessageSize: number;
  // (The peer id's bytes and the session key are rebuilt for each HELLO rather than held as
  // Uint8Arrays, ~200 B of heap each, for the transport's whole life.)
  /** Random per transport, sent in every HELLO: proves a reconnect comes from the holder of the peer id. */
  readonly #sessionKey = String.fromCharCode(...randomId(16));
  /** What the options set (one shared frozen record when they set nothing but URL, peer id and onError). */
  readonly #o: RelaySettings;
  get #token(): Uint8Array | null {
    return this.#o.token;
  }
  get #timeoutMs(): number {
    return this.#o.timeoutMs;
  }
  get #tls(): LinkTlsOptions | undefined {
    return this.#o.tls;
  }
  get #reconnect(): Required<ReconnectOptions> {
    return this.#o.reconnect;
  }
  get #highWaterMark(): number {
    return this.#o.highWaterMark;
  }
  get #inbound(): InboundBounds {
    return this.#o.inbound;
  }
  get #heartbeatIntervalMs(): number {
    return this.#o.heartbeatIntervalMs;
  }
  get #implementation(): WebSocketImplementation {
    return this.#o.implementation;
  }
  readonly #onError: ((error: RhizomeError) => void) | undefined;
  readonly #mailbox: RelayMailbox | null;

  /**
   * The topics, by their key (`TopicState.topic`) and by the relay's id in the current session: usually one (one database
   * per transport), held in a field; the others in maps made for the second one. A topic is found
   * by its id while it is joined in the current session (`topicId !== 0`).
   */
  #topic: TopicState | null = null;
  get #moreTopics(): Map<string, TopicState> | null {
    return this.#rare?.moreTopics ?? null;
  }
  set #moreTopics(value: Map<string, TopicState> | null) {
    this.#setRare('moreTopics', value);
  }
  get #moreTopicsById(): Map<number, TopicState> | null {
    return this.#rare?.moreTopicsById ?? null;
  }
  set #moreTopicsById(value: Map<number, TopicState> | null) {
    this.#setRare('moreTopicsById', value);
  }

  #getTopic(topic: Uint8Array): TopicState | undefined {
    const one = this.#topic;
    if (one !== null && isTopic(one.topic, topic)) return one;
    return this.#moreTopics?.get(topicKey(topic));
  }

  #topicById(id: number): TopicState | undefined {
    const one = this.#topic;
    if (one !== null && id !== 0 && one.topicId === id) return one;
    return this.#moreTopicsById?.get(id);
  }

  /** True while `state` is registered (not dropped, nor replaced by a newer state of its topic). */
  #hasTopic(state: TopicState): boolean {
    return this.#topic === state || this.#moreTopics?.get(state.topic) === state;
  }

  /** Registers a new topic (none of its key is registered). */
  #addTopic(state: TopicState): void {
    if (this.#topic === null) this.#topic = state;
    else (this.#moreTopics ??= new Map()).set(state.topic, state);
  }

  /** The relay's id of `state` in this session (JOINED). */
  #setTopicId(state: TopicState, id: number): void {
    if (state !== this.#topic) {
      const byId = (this.#moreTopicsById ??= new Map());
      if (state.topicId !== 0 && byId.get(state.topicId) === state) byId.delete(state.topicId);
      byId.set(id, state);
    }
    state.topicId = id;
  }

  #removeTopic(state: TopicState): void {
    if (this.#topic === state) this.#topic = null;
    else if (this.#moreTopics?.get(state.topic) === state) {
      this.#moreTopics.delete(state.topic);
      if (this.#moreTopics.size === 0) this.#moreTopics = null;
      if (state.topicId !== 0 && this.#moreTopicsById?.get(state.topicId) === state) {
        this.#moreTopicsById.delete(state.topicId);
        if (this.#moreTopicsById.size === 0) this.#moreTopicsById = null;
      }
    }
  }

  #topicCount(): number {
    return (this.#topic === null ? 0 : 1) + (this.#moreTopics?.size ?? 0);
  }

  /** The topics (a snapshot: the caller may drop some while it iterates). */
  #topicList(): TopicState[] {
    const out: TopicState[] = this.#topic === null ? [] : [this.#topic];
    if (this.#moreTopics !== null) for (const state of this.#moreTopics.values()) out.push(state);
    return out;
  }
  /**
   * What the transport holds only at times — a second topic's maps, pending LOOKUPs, session
   * waiters, the HELLO timer and the topics sent with HELLO, the backoff's wake-up, the fatal and
   * the last error, WINDOW(0)s owed —: one record made at the first of them and dropped once all
   * are empty again, behind the private accessors below (an idle transport keeps one field for
   * eleven; ARCHITECTURE § Memory of an idle replica).
   */
  #rare: TransportRare | null = null;
  #setRare<K extends keyof TransportRare>(key: K, value: TransportRare[K]): void {
    let rare = this.#rare;
    const empty = value === null || value === undefined;
    if (rare === null) {
      if (empty) return;
      rare = this.#rare = newTransportRare();
    }
    rare[key] = value;
    if (empty && rareRecordIsEmpty(rare)) this.#rare = null;
  }
  /** Pending LOOKUPs by request id (made on the first, dropped with the last). */
  get #lookups(): Lookups | null {
    return this.#rare?.lookups ?? null;
  }
  set #lookups(value: Lookups | null) {
    this.#setRare('lookups', value);
  }
  /** {@link NO_SESSION_WAITERS} while none waits (replaced by a list of its own at the first). */
  get #sessionWaiters(): SessionWaiter[] {
    return this.#rare?.sessionWaiters ?? NO_SESSION_WAITERS;
  }
  set #sessionWaiters(value: SessionWaiter[]) {
    this.#setRare('sessionWaiters', value === NO_SESSION_WAITERS || value.length === 0 ? null : value);
  }
  #link: Link | null = null;
  /**
   * The socket of the session in progress, from {@link #runSession} until the session ends
   * ({@link #endSession}, once): the transport is the handler of its links, and this says which of
   * them speaks for the current session (a late event of an older socket is dropped). The
   * session's state is the few fields below, not a scope of closures kept by the socket's handlers.
   */
  #sessionLink: Link | null = null;
  /** {@link WELCOMED}, {@link SEEN} (a frame came since the last liveness tick), {@link PINGED}. */
  #sessionBits = 0;
  /** PINGs sent (their payload). */
  #pings = 0;
  /** Bounds the wait for WELCOME; cleared by it. */
  get #helloTimer(): ReturnType<typeof setTimeout> | undefined {
    return this.#rare?.helloTimer ?? undefined;
  }
  set #helloTimer(value: ReturnType<typeof setTimeout> | undefined) {
    this.#setRare('helloTimer', value ?? null);
  }
  // The liveness tick of a welcomed session (a PING when quiet; dead when quiet after it) runs on
  // core's shared ticker of its period ({@link safeTick}): no interval timer per transport (a
  // `Timeout` with its arguments is ~0.2 KiB, ARCHITECTURE § Memory of an idle replica).
  /** The topic frames sent with HELLO (joined or announced), settled and dropped at WELCOME. */
  get #early(): Map<TopicState, boolean> | null {
    return this.#rare?.early ?? null;
  }
  set #early(value: Map<TopicState, boolean> | null) {
    this.#setRare('early', value);
  }
  /** Increments with every session: Connections of an older one are dead. */
  #generation = 0;
  #session = 0;
  #relayMaxFrame = 0;
  #state: RelayTransportState = 'idle';
  /** {@link RUNNING}, {@link CLOSED}, {@link RELAY_WINDOW}: bits of one small integer. */
  #bits = 0;
  #bit(bit: number, on: boolean): void {
    this.#bits = on ? this.#bits | bit : this.#bits & ~bit;
  }
  /** The session loop runs (a socket open, opening, or a backoff pending). */
  get #running(): boolean {
    return (this.#bits & RUNNING) !== 0;
  }
  set #running(on: boolean) {
    this.#bit(RUNNING, on);
  }
  get #wake(): (() => void) | null {
    return this.#rare?.wake ?? null;
  }
  set #wake(value: (() => void) | null) {
    this.#setRare('wake', value);
  }
  get #closed(): boolean {
    return (this.#bits & CLOSED) !== 0;
  }
  set #closed(on: boolean) {
    this.#bit(CLOSED, on);
  }
  get #fatal(): RhizomeError | null {
    return this.#rare?.fatal ?? null;
  }
  set #fatal(value: RhizomeError | null) {
    this.#setRare('fatal', value);
  }
  get #lastError(): RhizomeError | null {
    return this.#rare?.lastError ?? null;
  }
  set #lastError(value: RhizomeError | null) {
    this.#setRare('lastError', value);
  }
  #nextRequestId = 1;
  /** Paces data frames under the rates the relay announced (LIMITS); null before, or with a relay that announces none. */
  #pacer: SendPacer | null = null;
  /** The relay forwards WINDOW frames (LIMITS flag): per-Connection credit flow control is on. */
  get #relayWindow(): boolean {
    return (this.#bits & RELAY_WINDOW) !== 0;
  }
  set #relayWindow(on: boolean) {
    this.#bit(RELAY_WINDOW, on);
  }

  constructor(options: RelayTransportOptions) {
    if (options === null || typeof options !== 'object') throw new InvalidConfigError('options', 'must be an object');
    const urls = typeof options.url === 'string' ? [options.url] : options.url;
    if (!Array.isArray(urls) || urls.length === 0 || urls.some((u) => typeof u !== 'string')) {
      throw new InvalidConfigError('relayUrl', 'must be a URL or a non-empty list of URLs');
    }
    this.#relays = urls.length === 1 ? normalizeRelayUrl(urls[0]!) : new RelayRotation(urls.map((u: string) => normalizeRelayUrl(u)));
    this.peerId = options.peerId ?? randomPeerId();
    const peerIdBytes = utf8(this.peerId);
    if (peerIdBytes.length < 1 || peerIdBytes.length > MAX_PEER_ID_BYTES) {
      throw new InvalidConfigError('peerId', `must be 1 to ${MAX_PEER_ID_BYTES} UTF-8 bytes`);
    }
    const token = options.token === undefined ? null : utf8(options.token);
    if (token !== null && (token.length === 0 || token.length > MAX_TOKEN_BYTES)) {
      throw new InvalidConfigError('token', `must be 1 to ${MAX_TOKEN_BYTES} UTF-8 bytes`);
    }
    const timeoutMs = positiveInt(options.timeoutMs, 'timeoutMs', DEFAULT_TIMEOUT_MS);
    this.maxMessageSize = positiveInt(options.maxMessageSize, 'maxMessageSize', DEFAULT_NETWORK_MAX_MESSAGE_SIZE);
    const reconnect = {
      initialDelayMs: positiveInt(options.reconnect?.initialDelayMs, 'reconnect.initialDelayMs', DEFAULTS.initialDelayMs),
      maxDelayMs: positiveInt(options.reconnect?.maxDelayMs, 'reconnect.maxDelayMs', DEFAULTS.maxDelayMs),
      factor: positiveInt(options.reconnect?.factor, 'reconnect.factor', DEFAULTS.factor),
    };
    const highWaterMark = positiveInt(options.highWaterMark, 'highWaterMark', DEFAULTS.highWaterMark);
    const inbound = {
      maxMessages: positiveInt(options.inboundHighWaterMark, 'inboundHighWaterMark', DEFAULT_INBOUND_BOUNDS.maxMessages),
      maxBytes: positiveInt(options.inboundMaxBytes, 'inboundMaxBytes', DEFAULT_INBOUND_BOUNDS.maxBytes),
    };
    const heartbeatIntervalMs = options.heartbeatIntervalMs ?? DEFAULTS.heartbeatIntervalMs;
    if (!Number.isFinite(heartbeatIntervalMs) || heartbeatIntervalMs < 0) {
      throw new InvalidConfigError('heartbeatIntervalMs', 'must be a non-negative number (0 disables)');
    }
    const implementation = options.implementation ?? defaultImplementation();
    const tls = resolveTlsOptions(options.tls);
    this.#o = relaySettings({ token, timeoutMs, tls, reconnect, highWaterMark, inbound, heartbeatIntervalMs, implementation });
    this.#onError = options.onError;
    this.#mailbox = options.mailbox === false ? null : new RelayTransport.#Mailbox(this);
  }

  /**
   * The transport's mailbox access, which is also what the access needs of its transport
   * ({@link MailboxLinkHost}): prototype methods over the transport — not an object of closures
   * that would keep the constructor's scope (options included) alive, nor a host object beside
   * the access (one object per transport).
   */
  static readonly #Mailbox = class TransportMailbox extends RelayMailbox implements MailboxLinkHost {
    readonly #t: RelayTransport;
    constructor(t: RelayTransport) {
      super();
      this.#t = t;
    }
    protected linkHost(): MailboxLinkHost {
      return this;
    }
    // A getter: with a relay list the mailbox belongs to the relay of the current session.
    get url(): string {
      return this.#t.url;
    }
    get timeoutMs(): number {
      return this.#t.#timeoutMs;
    }
    get highWaterMark(): number {
      return this.#t.#highWaterMark;
    }
    currentLink(): Link | null {
      return this.#t.#session !== 0 ? this.#t.#link : null;
    }
    relayMaxFrame(): number {
      return this.#t.#relayMaxFrame;
    }
  };

  /**
   * The relay's sealed mailbox (ARCHITECTURE.md § Mailbox), used by the sync layer when the
   * relay offers one; null when the transport was built with `mailbox: false`.
   */
  get mailbox(): RelayMailbox | null {
    return this.#mailbox;
  }

  /** The normalized URL of the relay in use (or tried next). */
  get url(): string {
    const relays = this.#relays;
    return typeof relays === 'string' ? relays : relays.current;
  }

  /** Every relay this transport may use, normalized, in the order given. */
  get urls(): readonly string[] {
    const relays = this.#relays;
    return typeof relays === 'string' ? [relays] : relays.urls;
  }

  /** Where the link to the relay stands. */
  get state(): RelayTransportState {
    return this.#state;
  }

  /** The last error the link hit (a failed attempt, a relay close), or null. */
  get lastError(): RhizomeError | null {
    return this.#lastError;
  }

  async announce(topic: TopicHash): Promise<void> {
    assertTopic(topic);
    this.#assertOpen();
    await this.#whenSession();
    this.#assertOpen();
    let state = this.#getTopic(topic);
    if (state?.joined) return;
    if (!state) {
      state = this.#newTopic(topic);
      this.#addTopic(state);
    }
    await this.#sendTopicAndAwaitAck(state, FrameType.ANNOUNCE);
  }

  async lookup(topic: TopicHash): Promise<PeerInfo[]> {
    assertTopic(topic);
    this.#assertOpen();
    await this.#whenSession();
    this.#assertOpen();
    const link = this.#link;
    if (link === null) throw new ConnectFailedError(`lost the session with relay ${this.url} before the lookup`);
    const requestId = this.#nextRequestId;
    this.#nextRequestId = requestId >= 0xffffffff ? 1 : requestId + 1;
    const lookups = (this.#lookups ??= new Map());
    const reply = new Promise<PeerInfo[]>((resolve, reject) => lookups.set(requestId, { resolve, reject }));
    link.send(encodeLookup(requestId, topic));
    return this.#bounded(reply, `a LOOKUP reply from ${this.url}`, () => {
      lookups.delete(requestId);
      if (lookups.size === 0 && this.#lookups === lookups) this.#lookups = null;
    });
  }

  /**
   * Joins the topic. Resolves as soon as the topic is registered (after the relay's
   * acknowledgement when a session is up): a relay that is unreachable right now does not fail
   * the call — the transport keeps trying in the background and yields Connections once it
   * gets through, so a database opened offline syncs when the network comes back. Failed
   * attempts are reported through `onError` / `lastError` (`ERR_CONNECT_FAILED`, naming the
   * URL). A refusal that retrying cannot fix ends the iterable with `ERR_RELAY_REJECTED`.
   */
  async connect(topic: TopicHash, options: ConnectOptions = {}): Promise<AsyncIterable<Connection>> {
    assertTopic(topic);
    this.#assertOpen();
    const { signal } = options;
    if (signal?.aborted) throw new AbortError();
    let state = this.#getTopic(topic);
    if (state?.joined) throw new TopicAlreadyJoinedError(topicToHex(topic));
    if (!state) {
      state = this.#newTopic(topic);
      this.#addTopic(state);
    }
    state.joined = true;
    const queue = new AsyncQueue<Connection>();
    state.queue = queue;
    const joined = state;
    if (signal) {
      const onAbort = (): void => this.#leave(joined);
      signal.addEventListener('abort', onAbort, { once: true });
      joined.detachSignal = () => signal.removeEventListener('abort', onAbort);
    }
    this.#ensureRunning();
    if (this.#session !== 0) {
      // Best effort: a session that breaks now is rejoined by the session loop.
      await this.#sendTopicAndAwaitAck(state, FrameType.JOIN).catch(() => undefined);
    }
    return queue;
  }

  async disconnect(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#state = 'closed';
    this.#clearWindows();
    const error = new TransportClosedError('relay transport is disconnected');
    for (const state of this.#topicList()) this.#dropTopic(state);
    this.#rejectLookups(error);
    this.#rejectSessionWaiters(error);
    this.#mailbox?.onSessionLost(error);
    this.#wake?.();
    const pending = this.#pendingLink;
    if (pending !== null) pending.close(CloseCode.NORMAL, 'disconnect');
    const link = this.#link;
    this.#link = null;
    if (link && link.open) {
      const closed = new Promise<void>((resolve) => {
        const transport = this;
        link.handler = {
          onLinkFrame(l: Link, frame: Uint8Array): void {
            transport.onLinkFrame(l, frame);
          },
          onLinkClose(l: Link, code: number, reason: string): void {
            transport.onLinkClose(l, code, reason);
            resolve();
          },
        };
      });
      link.close(CloseCode.NORMAL, 'disconnect');
      await this.#bounded(closed, 'the relay to acknowledge the close', () => {}, Math.min(this.#timeoutMs, CLOSE_WAIT_MS)).catch(() => {
        link.terminate();
      });
    }
  }

  // ------------------------------------------------------------------------------------------
  // Connection-side operations

  /** @internal The number of the current relay session (moves on when one is lost and when one starts). */
  get generation(): number {
    return this.#generation;
  }

  /** @internal Sends one message of a Connection. */
  async sendData(state: TopicState, to: number, generation: number, data: Uint8Array, window: SendWindow): Promise<void> {
    const limit = this.#relayMaxFrame > 0 ? Math.min(this.maxMessageSize, this.#relayMaxFrame - DATA_HEADER_BYTES) : this.maxMessageSize;
    if (data.length > limit) throw new FrameTooLargeError(data.length, limit);
    // The remote reader's room first (flow.ts): a slow reader slows its own sender, nobody else.
    await window.acquire(messageCost(data.length));
    const pacer = this.#pacer;
    // Wait for the relay's rate tokens (LIMITS) first, so a large catch-up is paced, not cut.
    if (pacer !== null && generation === this.#generation) await pacer.take(DATA_HEADER_BYTES + data.length);
    const link = this.#link;
    if (generation !== this.#generation || link === null || !link.open || state.topicId === 0) {
      throw new ConnectionClosedError('relay session lost; a new connection will be yielded after reconnecting');
    }
    if (this.#rare?.owedWindows) this.#flushWindows();
    link.send(encodeDataFrame(FrameType.SEND, state.topicId, to, data, frameBytes));
    if (link.bufferedAmount > this.#highWaterMark) await link.whenDrained(this.#highWaterMark / 2);
  }

  /**
   * @internal {@link sendData} when nothing has to wait (the usual case: credit in the window,
   * tokens in the pacer, the socket still below its high-water mark with this frame in it): sends
   * and returns true. Returns false, having sent and spent nothing, otherwise (also for a frame
   * too large or a lost session); the caller then uses sendData, which waits or throws. A frame
   * that would take the socket past the high-water mark goes by sendData, which waits for the
   * drain after it, as before.
   */
  trySendData(state: TopicState, to: number, generation: number, data: Uint8Array, window: SendWindow): boolean {
    const link = this.#link;
    if (generation !== this.#generation || link === null || !link.open || state.topicId === 0) return false;
    if (data.length > this.dataLimit || link.bufferedAmount + WS_FRAME_HEADER_MAX + DATA_HEADER_BYTES + data.length > this.#highWaterMark) return false;
    const cost = messageCost(data.length);
    if (!window.canAcquire(cost)) return false;
    const pacer = this.#pacer;
    if (pacer !== null && !pacer.tryTake(DATA_HEADER_BYTES + data.length)) return false;
    window.tryAcquire(cost);
    if (this.#rare?.owedWindows) this.#flushWindows();
    link.send(encodeDataFrame(FrameType.SEND, state.topicId, to, data, frameBytes));
    return true;
  }

  /** @internal Largest data-frame payload in the current session. */
  get dataLimit(): number {
    return this.#relayMaxFrame > 0 ? Math.min(this.maxMessageSize, this.#relayMaxFrame - DATA_HEADER_BYTES) : this.maxMessageSize;
  }

  /** @internal True while `state` is joined in session `generation`. */
  broadcastOpen(state: TopicState, generation: number): boolean {
    return generation === this.#generation && this.#link !== null && this.#link.open && state.topicId !== 0 && this.#hasTopic(state);
  }

  /** @internal Sends one BROADCAST frame: the relay delivers it to every other member of the topic. */
  async sendBroadcast(state: TopicState, generation: number, data: Uint8Array): Promise<void> {
    const limit = this.dataLimit;
    if (data.length > limit) throw new FrameTooLargeError(data.length, limit);
    // Every member's reader must have room (flow.ts), and the relay charges a broadcast once per
    // other member (fan-out is paid by the sender): pace it so.
    const cost = messageCost(data.length);
    const peers = peerList(state);
    await Promise.all(peers.map((conn) => conn.sendWindow.acquire(cost)));
    const pacer = this.#pacer;
    const fanOut = Math.max(1, peers.length);
    if (pacer !== null && generation === this.#generation) await pacer.take(fanOut * (DATA_HEADER_BYTES + data.length), fanOut);
    const link = this.#link;
    if (!this.broadcastOpen(state, generation) || link === null) {
      throw new ConnectionClosedError('relay session lost; a new broadcast comes with the new connections');
    }
    if (this.#rare?.owedWindows) this.#flushWindows();
    link.send(encodeDataFrame(FrameType.BROADCAST, state.topicId, 0, data, frameBytes));
    if (link.bufferedAmount > this.#highWaterMark) await link.whenDrained(this.#highWaterMark / 2);
  }

  /**
   * Holds `conn`'s WINDOW(0) ("I speak WINDOW") until the next data frame leaves on the socket, or
   * for {@link WINDOW_ANNOUNCE_DELAY_MS} at most (flow.ts: a pair's opening messages follow the
   * pairing a few milliseconds later, in another tick; held, the WINDOW(0)s leave in the same
   * write). The owed list and its timer live in the rare record, only while something is owed.
   */
  #oweWindow(conn: RelayConnection): void {
    const owed = this.#rare?.owedWindows;
    if (owed) {
      owed.push(conn);
      return;
    }
    this.#setRare('owedWindows', [conn]);
    const timer = setTimeout(RelayTransport.#windowsDue, WINDOW_ANNOUNCE_DELAY_MS, this);
    (timer as { unref?: () => void }).unref?.();
    this.#setRare('windowTimer', timer);
  }

  static #windowsDue(t: RelayTransport): void {
    t.#setRare('windowTimer', null);
    t.#flushWindows();
  }

  /** Sends every held WINDOW(0) now (before a data frame, so both leave in one write). */
  #flushWindows(): void {
    const owed = this.#rare?.owedWindows;
    if (!owed) return;
    this.#clearWindows();
    sayWindow(owed);
  }

  /** Forgets the WINDOW(0)s held (the transport disconnected, or they are being sent). */
  #clearWindows(): void {
    const timer = this.#rare?.windowTimer;
    if (timer) clearTimeout(timer);
    this.#setRare('windowTimer', null);
    this.#setRare('owedWindows', null);
  }

  /** @internal Grants the remote sender of a Connection `credit` more bytes (WINDOW). */
  sendWindowGrant(state: TopicState, to: number, generation: number, credit: number): void {
    const link = this.#link;
    if (!this.#relayWindow || generation !== this.#generation || link === null || !link.open || state.topicId === 0) return;
    this.#pacer?.charge(1, 13);
    link.send(encodeWindow(state.topicId, to, credit, frameBytes(WINDOW_FRAME_BYTES)));
  }

  /** @internal Tells the remote peer a Connection closed. */
  sendClosePeer(state: TopicState, to: number, generation: number): void {
    const link = this.#link;
    if (generation !== this.#generation || link === null || !link.open || state.topicId === 0) return;
    this.#pacer?.charge(1, DATA_HEADER_BYTES);
    link.send(encodeDataFrame(FrameType.CLOSE_PEER, state.topicId, to, undefined, frameBytes));
  }

  // ------------------------------------------------------------------------------------------
  // Topics

  #newTopic(topic: Uint8Array): TopicState {
    return { owner: this, topic: topicKey(topic), joined: false, queue: null, topicId: 0, peers: NO_PEERS, acks: NO_ACKS, detachSignal: null, broadcast: null };
  }

  async #sendTopicAndAwaitAck(state: TopicState, type: typeof FrameType.JOIN | typeof FrameType.ANNOUNCE): Promise<void> {
    const link = this.#link;
    if (!link || !link.open) return; // the session loop re-sends it on reconnect
    const ack = new Promise<void>((resolve) => (state.acks === NO_ACKS ? (state.acks = []) : state.acks).push(resolve));
    link.send(topicFrame(type, state));
    await this.#bounded(ack, `the relay ${this.url} to acknowledge the topic`, () => {});
  }

  /** Leaves a joined topic (connect aborted): the relay tells the others, our Connections close. */
  #leave(state: TopicState): void {
    if (!this.#hasTopic(state)) return;
    const link = this.#link;
    if (link?.open) link.send(topicFrame(FrameType.LEAVE, state));
    this.#dropTopic(state);
  }

  #dropTopic(state: TopicState): void {
    state.detachSignal?.();
    state.detachSignal = null;
    this.#removeTopic(state);
    this.#closeTopicConnections(state);
    state.queue?.end();
    for (const ack of state.acks) ack();
    state.acks = NO_ACKS;
  }

  #closeTopicConnections(state: TopicState): void {
    for (const conn of peerList(state)) conn.markClosed();
    state.peers = NO_PEERS;
  }

  // ------------------------------------------------------------------------------------------
  // Session management: one loop keeps a socket up while anything needs it.

  #assertOpen(): void {
    if (this.#closed) throw new TransportClosedError('relay transport is disconnected');
    if (this.#fatal) throw this.#fatal;
  }

  /** Resolves once a session is up; rejects after `timeoutMs` with ERR_CONNECT_FAILED naming the URL. */
  #whenSession(signal?: AbortSignal): Promise<void> {
    if (this.#link?.open && this.#session !== 0) return Promise.resolve();
    let waiter!: SessionWaiter;
    const remove = (): void => {
      const waiters = this.#sessionWaiters;
      const i = waiters.indexOf(waiter);
      if (i >= 0) waiters.splice(i, 1);
      if (waiters.length === 0) this.#sessionWaiters = NO_SESSION_WAITERS;
    };
    const ready = new Promise<void>((resolve, reject) => {
      waiter = { resolve, reject };
      if (this.#sessionWaiters === NO_SESSION_WAITERS) this.#sessionWaiters = [waiter];
      else this.#sessionWaiters.push(waiter);
      signal?.addEventListener(
        'abort',
        () => {
          remove();
          reject(new AbortError());
        },
        { once: true },
      );
    });
    this.#ensureRunning();
    return this.#bounded(ready, `a session with ${this.url}`, remove).catch((error: unknown) => {
      if (error instanceof TimeoutError) {
        const last = this.#lastError ? `: ${this.#lastError.message}` : '';
        throw new ConnectFailedError(`could not reach relay ${this.url} within ${this.#timeoutMs} ms${last}`, { cause: this.#lastError });
      }
      throw error;
    });
  }

  /** Bounds a wait by `timeoutMs`: rejects with ERR_TIMEOUT after running `onTimeout`. */
  #bounded<T>(promise: Promise<T>, what: string, onTimeout: () => void, ms = this.#timeoutMs): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        onTimeout();
        reject(new TimeoutError(`timed out after ${ms} ms waiting for ${what}`));
      }, ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  #needsSession(): boolean {
    return !this.#closed && this.#fatal === null && (this.#topicCount() > 0 || this.#sessionWaiters.length > 0 || (this.#lookups?.size ?? 0) > 0);
  }

  #ensureRunning(): void {
    if (this.#running || this.#closed) return;
    this.#running = true;
    this.#nextSession();
  }

  /**
   * True when a refusal with this close code must end the transport: a code that retrying
   * cannot fix, from every relay of the list in a row (REPLACED: another connection of this
   * very client holds the id, so always).
   */
  #refusedForGood(code: number): boolean {
    if (!isFatalCloseCode(code)) return false;
    // (One relay: refused by every relay of the list in a row, at once.)
    const relays = this.#relays;
    return code === CloseCode.REPLACED || code === CloseCode.HELLO_REQUIRED || typeof relays === 'string' || relays.refusedForGood();
  }

  // The session loop is callbacks, not an async function: an idle transport holds its socket's
  // handlers, not a loop suspended on a promise for the session's whole life (ARCHITECTURE
  // § Memory of an idle replica). #nextSession opens a session while one is needed; the session
  // ends in #sessionEnded (exactly once), which backs off and calls #nextSession again.

  /** Opens the next session if anything needs one; else the loop stops. */
  #nextSession(): void {
    if (!this.#needsSession()) {
      this.#stopLoop();
      return;
    }
    this.#state = this.#generation === 0 ? 'connecting' : 'reconnecting';
    openLink(this.url, {
      timeoutMs: this.#timeoutMs,
      maxPayload: Math.max(this.maxMessageSize + DATA_HEADER_BYTES + 64, 64 * 1024),
      implementation: this.#implementation,
      ...(this.#tls ? { tls: this.#tls } : {}),
    }).then(
      (link) => this.#runSession(link),
      (error: unknown) => this.#sessionEnded(null, error),
    );
  }

  #stopLoop(): void {
    this.#running = false;
    if (!this.#closed && this.#fatal === null) this.#state = 'idle';
  }

  /**
   * A session ended: closed by the relay or the network (`closedBy`), or it never came up
   * (`error`). Reports why, then retries after a backoff while a session is still needed.
   */
  #sessionEnded(closedBy: { code: number; reason: string } | null, error?: unknown): void {
    if (this.#closed) {
      this.#running = false;
      return;
    }
    if (error !== undefined) this.#report(error as RhizomeError);
    if (closedBy !== null) {
      const name = closeCodeName(closedBy.code);
      if (name !== undefined && closedBy.code !== CloseCode.NORMAL && closedBy.code !== CloseCode.GOING_AWAY) {
        const rejected = new RelayRejectedError(this.url, closedBy.code, name, closedBy.reason);
        this.#report(rejected);
        if (this.#refusedForGood(closedBy.code)) {
          this.#failAll(rejected);
          this.#running = false;
          return;
        }
      } else {
        this.#report(new ConnectFailedError(`lost the session with relay ${this.url} (close code ${closedBy.code})`));
      }
    }
    if (!this.#needsSession()) {
      this.#stopLoop();
      return;
    }
    // Refused or lost: the next relay of the list (the same one when there is only one).
    const relays = this.#relays;
    const delay = typeof relays === 'string' ? backoffDelayMs(this.#reconnect, this.#failures++) : relays.failed(this.#reconnect);
    const timer = setTimeout(() => this.#wakeUp(), delay);
    this.#wake = () => {
      clearTimeout(timer);
      this.#wakeUp();
    };
  }

  #wakeUp(): void {
    this.#wake = null;
    this.#nextSession();
  }

  /**
   * One session on an open socket: HELLO, WELCOME, rejoin topics, serve until the socket closes;
   * then {@link #sessionEnded} with the close code, or with the error when the session never
   * came up.
   */
  #runSession(link: Link): void {
    if (this.#closed) {
      link.close(CloseCode.NORMAL, 'disconnect');
      this.#sessionEnded(null, new TransportClosedError());
      return;
    }
    this.#sessionLink = link;
    this.#sessionBits = 0;
    link.handler = this;
    try {
      this.#helloTimer = setTimeout(RelayTransport.#helloTimedOut, this.#timeoutMs, this, link);
      link.send(encodeHello(utf8(this.peerId), this.#token, Uint8Array.from(this.#sessionKey, (c) => c.charCodeAt(0))));
      // The topics known now go right behind HELLO, in the same socket write (the link sends a
      // tick's frames in one write): the relay reads HELLO and its JOINs at once (one read per
      // connection fewer, BENCHMARKS.md § Issue 12, Session 9 (srvmem)) and answers JOINED one
      // round trip sooner. At most EARLY_TOPICS of them: a clustered relay holds only so many
      // frames while its router checks the HELLO; the others go at WELCOME, as before.
      for (const state of this.#topicList()) {
        const early = (this.#early ??= new Map());
        if (early.size >= EARLY_TOPICS) break;
        link.send(topicFrame(state.joined ? FrameType.JOIN : FrameType.ANNOUNCE, state));
        early.set(state, state.joined);
      }
    } catch (error) {
      // (As a throw in the old session promise's executor: reported, and the loop goes on.)
      link.terminate();
      this.#endSession(link, null, error);
    }
  }

  /** The socket waiting for WELCOME (closed by `disconnect()` too), if any. */
  get #pendingLink(): Link | null {
    return (this.#sessionBits & WELCOMED) === 0 ? this.#sessionLink : null;
  }

  /** The session of `link` ended (once; a later call, or one for an older socket, does nothing). */
  #endSession(link: Link, closedBy: { code: number; reason: string } | null, error?: unknown): void {
    if (link !== this.#sessionLink) return;
    this.#sessionLink = null;
    clearTimeout(this.#helloTimer);
    this.#helloTimer = undefined;
    if (this.#heartbeatIntervalMs !== 0) leaveTicker(this, this.#heartbeatIntervalMs);
    this.#early = null;
    this.#sessionEnded(closedBy, error);
  }

  static #helloTimedOut(t: RelayTransport, link: Link): void {
    if (link !== t.#sessionLink) return;
    t.#helloTimer = undefined;
    if ((t.#sessionBits & WELCOMED) !== 0) return;
    link.close(CloseCode.NORMAL, 'no WELCOME');
    t.#endSession(link, null, new ConnectFailedError(`relay ${t.url} did not answer HELLO within ${t.#timeoutMs} ms`));
  }

  /**
   * @internal The liveness tick of a welcomed session, every `heartbeatIntervalMs` on core's shared
   * ticker (`joinTicker`): frames seen since the last tick; a PING when quiet; dead when quiet
   * after it (so a dead relay is noticed after 2 to 3 intervals of silence, as with a timer of
   * its own started at WELCOME, which sets SEEN).
   */
  safeTick(): void {
    const link = this.#sessionLink;
    const bits = this.#sessionBits;
    if (link === null || (bits & WELCOMED) === 0) {
      leaveTicker(this, this.#heartbeatIntervalMs);
      return;
    }
    if ((bits & SEEN) !== 0) {
      this.#sessionBits = bits & ~(SEEN | PINGED);
      return;
    }
    if ((bits & PINGED) === 0) {
      this.#sessionBits = bits | PINGED;
      this.#pings = (this.#pings + 1) >>> 0;
      link.send(encodePing(FrameType.PING, this.#pings));
      return;
    }
    leaveTicker(this, this.#heartbeatIntervalMs);
    this.#report(new ConnectFailedError(`relay ${this.url} went silent for ${2 * this.#heartbeatIntervalMs} ms; reconnecting`));
    link.terminate();
  }

  /** @internal {@link LinkHandler}: a frame on one of this transport's sockets. */
  onLinkFrame(link: Link, frame: Uint8Array): void {
    if (link !== this.#sessionLink) return;
    const bits = this.#sessionBits;
    if ((bits & WELCOMED) !== 0) {
      if ((bits & SEEN) === 0) this.#sessionBits = bits | SEEN;
      this.#onFrame(frame);
      return;
    }
    if (!isWelcomeFrame(frame)) return;
    this.#sessionBits = WELCOMED | SEEN;
    clearTimeout(this.#helloTimer);
    this.#helloTimer = undefined;
    if (this.#closed) {
      link.close(CloseCode.NORMAL, 'disconnect');
      return;
    }
    this.#link = link;
    if (typeof this.#relays === 'string') this.#failures = 0;
    else this.#relays.succeeded();
    this.#generation++;
    this.#session = readU32(frame, 2);
    this.#relayMaxFrame = readU32(frame, 6);
    this.#mailbox?.onSession();
    this.#state = 'connected';
    if (this.#heartbeatIntervalMs !== 0) joinTicker(this, this.#heartbeatIntervalMs);
    // What changed since HELLO: topics left meanwhile are left (first: one may be back under a
    // new state), topics added, or announced and then joined, are sent now.
    const sent = this.#early;
    this.#early = null;
    if (sent !== null) for (const state of sent.keys()) if (!this.#hasTopic(state)) link.send(topicFrame(FrameType.LEAVE, state));
    for (const state of this.#topicList()) {
      if (sent?.get(state) === state.joined) continue;
      link.send(topicFrame(state.joined ? FrameType.JOIN : FrameType.ANNOUNCE, state));
    }
    const waiters = this.#sessionWaiters;
    this.#sessionWaiters = NO_SESSION_WAITERS;
    for (const w of waiters) w.resolve();
  }

  /** @internal {@link LinkHandler}: one of this transport's sockets closed. */
  onLinkClose(link: Link, code: number, reason: string): void {
    if (link !== this.#sessionLink) return;
    const welcomed = (this.#sessionBits & WELCOMED) !== 0;
    if (!welcomed || this.#link !== link) {
      if (welcomed) {
        this.#endSession(link, { code, reason });
        return;
      }
      const name = closeCodeName(code);
      if (name !== undefined && code !== CloseCode.NORMAL && code !== CloseCode.GOING_AWAY) {
        const rejected = new RelayRejectedError(this.url, code, name, reason);
        if (this.#refusedForGood(code)) this.#failAll(rejected);
        this.#endSession(link, null, rejected);
      } else {
        this.#endSession(link, null, new ConnectFailedError(`relay ${this.url} closed the socket (${code}) before the session started`));
      }
      return;
    }
    this.#sessionLost();
    this.#endSession(link, { code, reason });
  }

  /** The session ended: its Connections close; topics stay registered and are rejoined. */
  #sessionLost(): void {
    this.#mailbox?.onSessionLost(new ConnectFailedError(`lost the session with relay ${this.url}`));
    this.#link = null;
    this.#session = 0;
    this.#generation++;
    this.#pacer?.close(new ConnectionClosedError('relay session lost; a new connection will be yielded after reconnecting'));
    this.#pacer = null;
    this.#relayWindow = false;
    this.#moreTopicsById = null;
    for (const state of this.#topicList()) {
      state.topicId = 0;
      state.broadcast = null;
      this.#closeTopicConnections(state);
      for (const ack of state.acks) ack();
      state.acks = NO_ACKS;
    }
    this.#rejectLookups(new ConnectFailedError(`lost the session with relay ${this.url} during a lookup`));
  }

  #failAll(error: RhizomeError): void {
    this.#mailbox?.onSessionLost(error);
    this.#fatal = error;
    this.#state = 'failed';
    for (const state of this.#topicList()) {
      this.#removeTopic(state);
      this.#closeTopicConnections(state);
      state.queue?.fail(error);
      for (const ack of state.acks) ack();
    }
    this.#moreTopicsById = null;
    this.#rejectLookups(error);
    this.#rejectSessionWaiters(error);
  }

  #rejectLookups(error: unknown): void {
    const lookups = this.#lookups === null ? [] : [...this.#lookups.values()];
    this.#lookups = null;
    for (const l of lookups) l.reject(error);
  }

  #rejectSessionWaiters(error: unknown): void {
    const waiters = this.#sessionWaiters;
    this.#sessionWaiters = NO_SESSION_WAITERS;
    for (const w of waiters) w.reject(error);
  }

  #report(error: RhizomeError): void {
    this.#lastError = error;
    try {
      this.#onError?.(error);
    } catch {
      // A throwing error handler must not take the transport down: it is called from socket
      // events, timers and the session loop, where a throw would be uncaught.
    }
  }

  // ------------------------------------------------------------------------------------------
  // Frames from the relay (dispatch by type byte, a guard per frame)

  #onFrame(frame: Uint8Array): void {
    switch (frame[0]) {
      case FrameType.DELIVER:
        if (isDataFrame(frame)) this.#onDeliver(frame);
        return;
      case FrameType.PEER_JOINED:
        if (isPeerJoinedFrame(frame)) this.#onPeerJoined(frame);
        return;
      case FrameType.PEER_LEFT:
      case FrameType.PEER_CLOSED:
        if (isPairFrame(frame)) peerOfTopic(this.#topicById(readU32(frame, 1)), readU32(frame, 5))?.markClosed();
        return;
      case FrameType.JOINED:
        if (isJoinedFrame(frame)) this.#onJoined(frame);
        return;
      case FrameType.PEERS:
        if (isPeersFrame(frame)) this.#onPeers(frame);
        return;
      case FrameType.PONG:
        return; // liveness only: receiving it was the point
      case FrameType.LIMITS:
        if (isLimitsFrame(frame)) {
          const limits = decodeLimits(frame);
          this.#pacer = new SendPacer(limits);
          this.#relayWindow = (limits.flags & LIMITS_FLAG_WINDOW) !== 0;
        }
        return;
      case FrameType.WINDOW_UPDATE:
        if (isWindowFrame(frame)) peerOfTopic(this.#topicById(readU32(frame, 1)), readU32(frame, 5))?.sendWindow.grant(readU32(frame, 9));
        return;
      case FrameType.ERROR:
        if (isErrorFrame(frame)) {
          const text = fromUtf8(frame.subarray(7)) ?? '?';
          const what = readU16(frame, 1) === RelayErrorCode.TOPIC_FULL ? 'refused to pair this peer on a topic' : 'refused a frame';
          this.#report(new ConnectFailedError(`relay ${this.url} ${what}: ${text}`));
        }
        return;
      default:
        // Mailbox frames, else a newer relay's frame type: ignore it.
        this.#mailbox?.onFrame(frame);
        return;
    }
  }

  #onDeliver(frame: Uint8Array): void {
    const state = this.#topicById(readU32(frame, 1));
    const conn = peerOfTopic(state, readU32(frame, 5));
    if (state === undefined || conn === undefined || conn.closed) return;
    conn.deliver(frame.subarray(DATA_HEADER_BYTES));
    const overflow = inboundOverflow(conn, this.#inbound);
    if (overflow === null) return;
    // This Connection alone is closed; the socket keeps being read for everyone else (flow.ts).
    conn.markFailed(overflow);
    this.sendClosePeer(state, conn.remoteSession, this.#generation);
    this.#report(overflow);
  }

  #onPeerJoined(frame: Uint8Array): void {
    const state = this.#topicById(readU32(frame, 1));
    if (state === undefined || state.queue === null) return;
    const session = readU32(frame, 5);
    const idBytes = frame.subarray(10, 10 + frame[9]!);
    const peerId = fromUtf8(idBytes) ?? Array.from(idBytes, (b) => b.toString(16).padStart(2, '0')).join('');
    // A newer session of a peer we still hold a Connection to (it reconnected before the
    // relay noticed the old socket die): the old one is stale.
    // (Found by a scan of the topic's Connections: a map by peer id per topic is ~180 B of heap for
    // every idle replica, and a join is rare.)
    for (const old of peerList(state)) if (old.peerId === peerId) old.markClosed();
    const conn = new RelayConnection(state, session, peerId);
    putPeer(state, conn);
    // Flow control (flow.ts): say WINDOW(0) so the peer knows we grant credit — with our next data
    // frame, in the same write (#oweWindow); without a relay that forwards WINDOW, neither
    // side can, and the window is off.
    if (this.#relayWindow) this.#oweWindow(conn);
    else conn.sendWindow.disable();
    state.queue.push(conn);
  }

  #onJoined(frame: Uint8Array): void {
    const state = this.#getTopic(frame.subarray(5, 37));
    if (state === undefined) return;
    this.#setTopicId(state, readU32(frame, 1));
    if (state.queue !== null) state.broadcast = new RelayTopicBroadcast<TopicState>(this, state, this.#generation);
    const acks = state.acks;
    state.acks = NO_ACKS;
    for (const ack of acks) ack();
  }

  #onPeers(frame: Uint8Array): void {
    const { requestId, peers } = decodePeers(frame);
    const pending = this.#lookups?.get(requestId);
    if (!pending) return;
    const lookups = this.#lookups!;
    lookups.delete(requestId);
    if (lookups.size === 0) this.#lookups = null;
    pending.resolve(
      peers.map((p) => ({
        peerId: fromUtf8(p.peerId) ?? Array.from(p.peerId, (b) => b.toString(16).padStart(2, '0')).join(''),
        addresses: [this.url],
      })),
    );
  }
}
