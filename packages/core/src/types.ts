/** A 32-byte rendezvous topic: BLAKE2b-256 of a database id. See {@link deriveTopic}. */
export type TopicHash = Uint8Array;

/** JSON values a node's fields may hold. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A peer as a transport knows it: its id and the addresses it may be reached at. */
export interface PeerInfo {
  peerId: string;
  addresses: string[];
}

/**
 * How a connection reaches its peer, best first: `'direct'` (a plain libp2p connection),
 * `'holepunched'` (a direct libp2p connection that DCUtR opened in place of a relayed one),
 * `'memory'` (in-process), `'relay'` (through a Rhizome WebSocket relay), `'circuit'` (through
 * a libp2p circuit relay v2 node).
 */
export type PeerPath = 'direct' | 'holepunched' | 'circuit' | 'relay' | 'memory';

/** What a {@link Connection.listen} listener gets: each message, then the end. */
export interface ConnectionListener {
  /** One received message, in order. A throw is the listener's own problem: handle errors inside. */
  onMessage(data: Uint8Array): void;
  /** The connection closed (`error` set when it failed, e.g. its reader fell behind). Called once. */
  onEnd(error: Error | null): void;
}

/**
 * One remote peer on one topic. Messages keep their boundaries and their order; a close on
 * either side is seen by the other (its `receive()` resolves `null` once the messages sent
 * before the close are read).
 */
export interface Connection extends AsyncIterable<Uint8Array> {
  /** The remote peer's id. */
  readonly peerId: string;
  /** The topic this connection was made for. */
  readonly topic: TopicHash;
  /** Which transport made it (`'memory'`, `'relay'`, `'dht'`), for status displays. */
  readonly transport: string;
  /** True once either side closed it. */
  readonly closed: boolean;
  /** How this connection reaches the peer; absent: the transport's usual path (its name decides). */
  readonly path?: PeerPath;
  /** The transport's latest round-trip time to the peer in ms (libp2p ping), if it measures one. */
  readonly rttMs?: number | undefined;
  /**
   * Optional capability: the topic broadcast this connection belongs to (the relay's BROADCAST).
   * Connections of one topic that share one `broadcast` object reach their remote peers through
   * it with a single send. Transports without it leave this undefined.
   */
  readonly broadcast?: TopicBroadcast | undefined;
  /**
   * Sends one message. Resolves once the transport accepted it (it may wait for room:
   * transports apply backpressure); rejects with `ERR_CONNECTION_CLOSED` after a close and
   * `ERR_FRAME_TOO_LARGE` above the transport's `maxMessageSize`.
   */
  send(data: Uint8Array): Promise<void>;
  /**
   * Optional capability: sends one message at once when the transport can take it without
   * waiting (room in its windows and rate limits, no backpressure) and returns `true`; returns
   * `false`, having sent nothing, whenever it would have to wait or refuse. The caller then uses
   * `send`, which waits or rejects as usual. A sender uses it to skip a promise per message on
   * the common path; messages sent either way keep one order.
   */
  trySend?(data: Uint8Array): boolean;
  /** The next message, or `null` once the connection closed and its queue is drained. */
  receive(): Promise<Uint8Array | null>;
  /**
   * Optional capability: hand every received message to `listener` as it arrives (in order;
   * messages already received first), and call `listener.onEnd` once when the connection
   * closes, instead of queueing them for `receive()`. A reader that processes messages
   * synchronously uses it to hold nothing while idle. One listener per connection; `receive()`
   * and iteration are not used after it.
   */
  listen?(listener: ConnectionListener): void;
  /** Closes both directions; idempotent. */
  close(): Promise<void>;
}

/**
 * One message to every member of a topic at once. A transport offers it when its medium fans
 * out for free (a relay sends one frame to every member); the sync layer then seals a live
 * update once instead of once per peer.
 *
 * A message sent with `send` reaches the remote peer of every open Connection that carries this
 * same object (and members that join the topic while it is in flight, which get no Connection
 * from it until their own join is reported). For each remote peer it arrives on that peer's
 * Connection, in order with the unicast messages sent on that Connection. One object stands for
 * one topic on one underlying session: after a reconnect, new Connections carry a new object and
 * the old one is `closed`.
 */
export interface TopicBroadcast {
  /** Largest message `send` accepts. */
  readonly maxMessageSize: number;
  /** True once the session it belongs to ended (sends then reject with `ERR_CONNECTION_CLOSED`). */
  readonly closed: boolean;
  /**
   * Sends one message to every member. Resolves once the transport accepted it (with the same
   * backpressure as `Connection.send`); rejects with `ERR_CONNECTION_CLOSED` once closed and
   * `ERR_FRAME_TOO_LARGE` above `maxMessageSize`.
   */
  send(data: Uint8Array): Promise<void>;
}

/** Options of {@link Transport.connect}. */
export interface ConnectOptions {
  /** Aborting leaves the topic: the iterable ends and the topic's connections close. */
  signal?: AbortSignal;
}

/**
 * Moves bytes between peers that share a topic, and reports peers. Transports stay thin:
 * sync state, retries, sealing and de-duplication live in the sync layer.
 */
export interface Transport {
  /** The mode name: `'memory'`, `'disabled'`, `'relay'`, `'dht'`. */
  readonly name: string;
  /** Largest message `Connection.send` accepts; the sync layer splits bigger payloads. */
  readonly maxMessageSize: number;
  /** Make this peer findable on the topic. */
  announce(topic: TopicHash): Promise<void>;
  /** Peers currently findable on the topic (never this peer itself). */
  lookup(topic: TopicHash): Promise<PeerInfo[]>;
  /**
   * Joins the topic: announces, finds peers, and yields one Connection per remote peer,
   * inbound or outbound, exactly one per peer pair, until aborted or disconnected.
   */
  connect(topic: TopicHash, options?: ConnectOptions): Promise<AsyncIterable<Connection>>;
  /** Leaves every topic, closes every connection, releases sockets; idempotent. */
  disconnect(): Promise<void>;
}

/** Which transport {@link createTransport} builds. */
export type TransportMode = 'dht' | 'relay' | 'disabled' | 'memory';

/**
 * TLS options of the relay transport for `wss://` in Node (browsers use the system trust store):
 * `ca` trusts a self-signed relay or a private CA (PEM text or bytes, or a list of them);
 * `rejectUnauthorized: false` accepts any certificate (tests only). Checked up front by
 * `resolveTlsOptions`.
 */
export interface TlsOptions {
  ca?: string | Uint8Array | Array<string | Uint8Array>;
  rejectUnauthorized?: boolean;
}

/** Configuration for {@link createTransport}. Mode-specific fields are ignored by other modes. */
export interface TransportConfig {
  /** Default `'dht'`. */
  mode: TransportMode;
  /**
   * Relay mode: `ws://`, `wss://`, or a bare host (`wss://host:443`); or a list of instances of
   * one scaled-out relay: the transport sticks to one that works and fails over to the next
   * (backoff with jitter) when it is refused or lost.
   */
  relayUrl?: string | string[];
  /** Bound on connecting (relay handshake, DHT dials), default 30000 ms. */
  timeoutMs: number;
  /** End-to-end sealing in the sync layer; default true. Transports never see keys. */
  encryption: boolean;
  /** This peer's id (memory); relay mode picks a random one when absent. */
  peerId?: string;
  /** Memory mode: name of the in-process hub peers meet in (default `'default'`). */
  hub?: string;
  /** Relay mode: shared access token the relay requires, if any. */
  token?: string;
  /** Relay mode: extra TLS options for `wss://` in Node, e.g. `{ ca }` for a self-signed relay. */
  tls?: TlsOptions;
  /** DHT mode: multiaddrs of bootstrap peers. */
  bootstrap?: string[];
  /** DHT mode: multiaddrs to listen on (default tcp and ws on 0.0.0.0, ephemeral ports). */
  listen?: string[];
  /** DHT mode: path of a key file so the peer id survives restarts (created if missing). */
  keyFile?: string;
  /** DHT mode: run the DHT as a client only (no routing for others). Default false. */
  dhtClientMode?: boolean;
  /** DHT mode: protocol prefix that keeps Rhizome's DHT apart from others. Default `'/rhizome'`. */
  protocolPrefix?: string;
  /** DHT mode: keep loopback and private addresses in DHT records (tests, LANs). Default false. */
  allowPrivateAddresses?: boolean;
  /** Largest message a connection carries before the sync layer splits it. */
  maxMessageSize?: number;
  /** DHT mode: find peers on the local network by mDNS (no bootstrap node needed). Default true. */
  mdns?: boolean;
  /**
   * DHT mode: serve circuit relay v2 for peers behind NATs (reservations and per-connection
   * data/duration limits). Default false; bootstrap nodes serve it by default.
   */
  relayService?: boolean;
  /**
   * DHT mode: offer the topic handshake at once to every peer met over libp2p that speaks
   * Rhizome's sync protocol, instead of waiting for a lookup to list it (faster joins; such peers
   * learn the joined topic hashes). Default true.
   */
  probePeers?: boolean;
  /** Relay mode: use the relay's sealed mailbox when it offers one (offline catch-up). Default true; `false` turns it off. */
  mailbox?: boolean;
  /**
   * Called with errors the transport handles by itself (a lost relay session, a failed
   * reconnect attempt, a peer that broke the protocol). A database that builds its transport
   * from a configuration also reports them as `error` events.
   */
  onError?: (error: Error & { code?: string }) => void;
}

/** Something that can be started and stopped; `close()` is idempotent. */
export interface Closeable {
  close(): Promise<void>;
}
