import type { PrivateKey } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { DEFAULT_NETWORK_MAX_MESSAGE_SIZE, DEFAULT_TIMEOUT_MS, InvalidConfigError, type RhizomeError } from '@rhizome/core';

/** Protocol prefix of Rhizome's DHT and sync protocols. */
export const DEFAULT_PROTOCOL_PREFIX = '/rhizome';
/** Listen addresses when none are given: tcp and websockets on every interface, ephemeral ports. */
export const DEFAULT_LISTEN: readonly string[] = ['/ip4/0.0.0.0/tcp/0', '/ip4/0.0.0.0/tcp/0/ws'];
/** Longest wait between two lookups of a joined topic (they start at 500 ms and double). */
export const DEFAULT_LOOKUP_INTERVAL_MS = 30_000;
/** First wait between lookups of a newly joined topic. */
export const INITIAL_LOOKUP_INTERVAL_MS = 500;
/**
 * How long a provider record lives on the DHT nodes that store it (1 h): kad-dht drops older
 * records of other peers in its periodic sweep ({@link PROVIDER_SWEEP_INTERVAL_MS}). Short, so
 * that peers that left stop being found within about an hour (hyperswarm-like), instead of
 * kad-dht's default 48 h made for IPFS content.
 */
export const PROVIDER_VALIDITY_MS = 60 * 60 * 1000;
/** How often kad-dht sweeps its provider records: drops expired ones, re-provides its own when due. */
export const PROVIDER_SWEEP_INTERVAL_MS = 10 * 60 * 1000;
/** kad-dht re-provides this node's own records once they are older than validity minus this (so at 30 min). */
export const PROVIDER_REFRESH_THRESHOLD_MS = 30 * 60 * 1000;
/** How often the topic loop re-announces a joined topic (30 min, half the record's life). */
export const DEFAULT_REANNOUNCE_INTERVAL_MS = PROVIDER_VALIDITY_MS / 2;
/** Bound on a HELLO or its status byte arriving, and on one dial, unless `timeoutMs` is lower. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Received messages buffered per connection before the stream is paused (yamux stops crediting). */
export const RECEIVE_HIGH_WATER_MARK = 64;
/**
 * New libp2p connections a node opens at once to dial providers of its topics; more wait for a
 * slot (a peer linked meanwhile goes at once). See DialSlots and BENCHMARKS.md § DHT join.
 */
export const MAX_PARALLEL_NEW_DIALS = 3;
/** A slot counts for at most this long: a dial that hangs (a stale record) does not hold up the others. */
export const DIAL_SLOT_HOLD_MS = 1000;
/** How often the link monitor checks libp2p connections for life (libp2p's connection monitor: the same). */
export const DEFAULT_LINK_PING_INTERVAL_MS = 10_000;
/** Longest wait of a topic's first announce for its first Connection or first lookup (see `announceDeferMs`). */
export const DEFAULT_ANNOUNCE_DEFER_MS = 1000;
/** When kad-dht's start-up self-query and routing-table refresh run, after the node starts (see `startupWalkDelayMs`). */
export const DEFAULT_STARTUP_WALK_DELAY_MS = 3000;
/** A lost peer is redialed after a random pause of up to this (ms), when the topic has other connections. */
export const REDIAL_JITTER_MS = 1000;
/** Longest wait before re-dialing a peer whose dial failed (it starts at 1 s and doubles). */
export const MAX_DIAL_BACKOFF_MS = 60_000;

/**
 * Inbound connections per second accepted from one IP address when private addresses are
 * allowed (tests and LANs put every peer behind one address; libp2p's default is 5).
 */
export const PRIVATE_INBOUND_CONNECTION_THRESHOLD = 1000;
/** The same for a public bootstrap node, which many peers behind one NAT may dial at once. */
export const BOOTSTRAP_INBOUND_CONNECTION_THRESHOLD = 50;

/** Reservations a relay-serving node holds at once (libp2p's default is 15). */
export const RELAY_SERVICE_MAX_RESERVATIONS = 128;
/**
 * Longest life of one relayed connection (10 min): then the relay resets it and the peers
 * dial again (a fresh connection, fresh limits); the sync layer reconciles by state vectors.
 * libp2p's default (2 min, 128 KiB) is made for hole-punch coordination only, too little to
 * carry sync between peers behind symmetric NATs; these limits keep a relay from being an
 * open proxy while still carrying a database's traffic.
 */
export const RELAY_SERVICE_DURATION_LIMIT_MS = 10 * 60 * 1000;
/** Bytes one relayed connection may carry (both directions) before the relay resets it: 32 MiB. */
export const RELAY_SERVICE_DATA_LIMIT_BYTES = 32 * 1024 * 1024;

/** The mDNS service tag peers of one protocol prefix answer to (`_rhizome._udp.local` for `/rhizome`). */
export function mdnsServiceTag(prefix: string): string {
  const label = prefix.replace(/^\//, '').replace(/[^A-Za-z0-9-]/g, '-').slice(0, 60) || 'rhizome';
  return `_${label}._udp.local`;
}

/** Options of {@link DhtTransport} and `createTransportFromConfig` (the DHT fields of `TransportConfig`, plus a few). */
export interface DhtTransportOptions {
  /** Multiaddrs of bootstrap peers (DHT servers), e.g. `/ip4/1.2.3.4/tcp/4001/p2p/12D3Koo…`. */
  bootstrap?: string[];
  /** Multiaddrs to listen on. Default {@link DEFAULT_LISTEN}. */
  listen?: string[];
  /** Key file for a stable peer id: created with mode 0600 if missing. */
  keyFile?: string;
  /** A private key to use instead of `keyFile` (tests, embedding apps that keep their own keys). */
  privateKey?: PrivateKey;
  /** Run the DHT as a client only (no routing for others). Default false. */
  dhtClientMode?: boolean;
  /** Keeps Rhizome's DHT apart from others: protocols are `${prefix}/kad/1.0.0` and `${prefix}/sync/1.0.0`. Default `'/rhizome'`. */
  protocolPrefix?: string;
  /** Keep loopback and private addresses in DHT records (tests, LANs). Default false. */
  allowPrivateAddresses?: boolean;
  /** Find peers on the local network by mDNS: no bootstrap node or internet needed on a LAN. Default true. */
  mdns?: boolean;
  /**
   * Serve circuit relay v2 to peers behind NATs, with reservation and per-connection limits
   * ({@link RELAY_SERVICE_MAX_RESERVATIONS}, {@link RELAY_SERVICE_DURATION_LIMIT_MS},
   * {@link RELAY_SERVICE_DATA_LIMIT_BYTES}). For nodes with a public address. Default false.
   */
  relayService?: boolean;
  /**
   * Try the topic handshake at once with every peer this node meets over libp2p (a link opened by
   * a DHT query, by the peer, by mDNS) that speaks Rhizome's sync protocol, for every joined topic,
   * instead of waiting until a DHT lookup lists it as a provider; and with the peers already
   * connected when a topic is joined. A peer that has not joined the topic answers
   * `UNKNOWN_TOPIC` (one stream, 34 bytes), quietly on both sides. Such a peer learns the topic
   * hash (which DHT nodes see anyway; the sync traffic stays sealed with the database key). Set
   * false to send handshakes only to providers found by lookup and to LAN peers found by mDNS.
   * Default true.
   */
  probePeers?: boolean;
  /**
   * New libp2p connections opened at once to dial the providers a lookup finds; more wait for a
   * slot, which each dial holds for at most {@link DIAL_SLOT_HOLD_MS} (a peer linked meanwhile
   * goes at once). A joiner's first lookup lists every replica of the topic: a few dials at a
   * time bring the first Connection sooner than all at once. `Infinity` dials all at once.
   * Default {@link MAX_PARALLEL_NEW_DIALS}.
   */
  dialConcurrency?: number;
  /**
   * How often libp2p connections are checked for life (ms): a connection that nothing was
   * received over since the previous check (by a Rhizome session on it) gets a ping (libp2p's
   * `/ipfs/ping/1.0.0`), and is aborted when the ping fails or takes over `timeoutMs`. Default
   * {@link DEFAULT_LINK_PING_INTERVAL_MS} (libp2p's connection monitor's interval).
   */
  linkPingIntervalMs?: number;
  /**
   * Ping every libp2p connection at every check, also those whose sessions were just heard from
   * (what libp2p's connection monitor does). Costs idle CPU; for comparisons. Default false.
   */
  pingSessionLinks?: boolean;
  /**
   * Answer every received yamux data frame with a window update frame, as @chainsafe/libp2p-yamux
   * does by itself, instead of once half a stream's receive window is used (go-yamux's rule).
   * Costs CPU and frames; for comparisons. Default false.
   */
  eagerWindowUpdates?: boolean;
  /**
   * A topic's first announce waits until the topic's first Connection, the end of its first
   * lookup, or this many ms, whichever comes first: kad-dht's provide walk opens a libp2p link
   * (noise, identify) to each of the ~20 DHT nodes closest to the topic, which a joiner's first
   * Connection would otherwise share the CPU with. 0 announces at once. Default
   * {@link DEFAULT_ANNOUNCE_DEFER_MS}.
   */
  announceDeferMs?: number;
  /**
   * kad-dht's start-up walks (its self-query and its first routing-table refresh, each a lookup
   * that links to the peers it asks) start this many ms after the node: a joiner's first
   * Connection comes before them. Peers the node connects to meanwhile join its routing table
   * through identify. 0 runs them at once (the self-query after 100 ms). Default
   * {@link DEFAULT_STARTUP_WALK_DELAY_MS}.
   */
  startupWalkDelayMs?: number;
  /** Bound on DHT queries, dials and stalled sends, in ms. Default 30000. */
  timeoutMs?: number;
  /** Largest message a connection carries (both directions). Default 1 MiB. */
  maxMessageSize?: number;
  /** Bound on the topic handshake and on one dial. Default min(10000, timeoutMs). */
  handshakeTimeoutMs?: number;
  /** Longest wait between re-lookups of a joined topic. Default 30000. */
  lookupIntervalMs?: number;
  /** How often a joined topic's provider record is refreshed. Default 30 min. */
  reannounceIntervalMs?: number;
  /**
   * Called with every error the transport handles by itself (a dial that failed, a peer that
   * broke the protocol, a stalled stream); each is a RhizomeError with a stable `code`. The
   * transport keeps serving either way.
   */
  onError?: (error: RhizomeError) => void;
}

/** {@link DhtTransportOptions} with every default applied and every field checked. */
export interface ResolvedDhtOptions {
  bootstrap: string[];
  listen: string[];
  keyFile: string | undefined;
  privateKey: PrivateKey | undefined;
  dhtClientMode: boolean;
  protocolPrefix: string;
  allowPrivateAddresses: boolean;
  mdns: boolean;
  relayService: boolean;
  probePeers: boolean;
  dialConcurrency: number;
  linkPingIntervalMs: number;
  pingSessionLinks: boolean;
  eagerWindowUpdates: boolean;
  announceDeferMs: number;
  startupWalkDelayMs: number;
  timeoutMs: number;
  maxMessageSize: number;
  handshakeTimeoutMs: number;
  lookupIntervalMs: number;
  reannounceIntervalMs: number;
  onError: (error: RhizomeError) => void;
}

/** `dialConcurrency`: a whole number of at least 1 (below 1 no provider dial could start), or Infinity. */
function dialSlots(value: unknown): number {
  if (value === Infinity) return Infinity;
  const n = positive(value, 'dialConcurrency', MAX_PARALLEL_NEW_DIALS);
  if (n < 1) throw new InvalidConfigError('dialConcurrency', 'must be at least 1');
  return Math.floor(n);
}

function nonNegative(value: unknown, field: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidConfigError(field, 'must be a number of at least 0');
  }
  return value;
}

function positive(value: unknown, field: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidConfigError(field, 'must be a positive number');
  }
  return value;
}

function multiaddrs(value: unknown, field: string, fallback: readonly string[]): string[] {
  if (value === undefined) return [...fallback];
  if (!Array.isArray(value)) throw new InvalidConfigError(field, 'must be an array of multiaddr strings');
  return value.map((text: unknown) => {
    if (typeof text !== 'string') throw new InvalidConfigError(field, 'must be an array of multiaddr strings');
    try {
      return multiaddr(text).toString();
    } catch (error) {
      throw new InvalidConfigError(field, `'${text}' is not a multiaddr (${(error as Error).message})`);
    }
  });
}

/** Applies defaults and validates; a bad field throws {@link InvalidConfigError} naming it. */
export function resolveDhtOptions(options: DhtTransportOptions = {}): ResolvedDhtOptions {
  const prefix = options.protocolPrefix ?? DEFAULT_PROTOCOL_PREFIX;
  if (typeof prefix !== 'string' || !/^\/[A-Za-z0-9._\-/]*[A-Za-z0-9._-]$/.test(prefix)) {
    throw new InvalidConfigError('protocolPrefix', "must start with '/' and not end with '/', e.g. '/rhizome'");
  }
  const timeoutMs = positive(options.timeoutMs, 'timeoutMs', DEFAULT_TIMEOUT_MS);
  const maxMessageSize = options.maxMessageSize ?? DEFAULT_NETWORK_MAX_MESSAGE_SIZE;
  if (!Number.isInteger(maxMessageSize) || maxMessageSize < 1 || maxMessageSize > 0xffff_ffff) {
    throw new InvalidConfigError('maxMessageSize', 'must be a positive integer below 2^32');
  }
  for (const f of ['dhtClientMode', 'allowPrivateAddresses', 'mdns', 'relayService', 'probePeers', 'pingSessionLinks', 'eagerWindowUpdates'] as const) {
    if (options[f] !== undefined && typeof options[f] !== 'boolean') throw new InvalidConfigError(f, 'must be a boolean');
  }
  if (options.keyFile !== undefined && (typeof options.keyFile !== 'string' || options.keyFile.length === 0)) {
    throw new InvalidConfigError('keyFile', 'must be a non-empty path');
  }
  if (options.keyFile !== undefined && options.privateKey !== undefined) {
    throw new InvalidConfigError('privateKey', 'give either keyFile or privateKey, not both');
  }
  if (options.onError !== undefined && typeof options.onError !== 'function') {
    throw new InvalidConfigError('onError', 'must be a function');
  }
  return {
    bootstrap: multiaddrs(options.bootstrap, 'bootstrap', []),
    listen: multiaddrs(options.listen, 'listen', DEFAULT_LISTEN),
    keyFile: options.keyFile,
    privateKey: options.privateKey,
    dhtClientMode: options.dhtClientMode ?? false,
    protocolPrefix: prefix,
    allowPrivateAddresses: options.allowPrivateAddresses ?? false,
    mdns: options.mdns ?? true,
    relayService: options.relayService ?? false,
    probePeers: options.probePeers ?? true,
    dialConcurrency: dialSlots(options.dialConcurrency),
    linkPingIntervalMs: positive(options.linkPingIntervalMs, 'linkPingIntervalMs', DEFAULT_LINK_PING_INTERVAL_MS),
    pingSessionLinks: options.pingSessionLinks ?? false,
    eagerWindowUpdates: options.eagerWindowUpdates ?? false,
    announceDeferMs: nonNegative(options.announceDeferMs, 'announceDeferMs', DEFAULT_ANNOUNCE_DEFER_MS),
    startupWalkDelayMs: nonNegative(options.startupWalkDelayMs, 'startupWalkDelayMs', DEFAULT_STARTUP_WALK_DELAY_MS),
    timeoutMs,
    maxMessageSize,
    handshakeTimeoutMs: positive(options.handshakeTimeoutMs, 'handshakeTimeoutMs', Math.min(DEFAULT_HANDSHAKE_TIMEOUT_MS, timeoutMs)),
    lookupIntervalMs: positive(options.lookupIntervalMs, 'lookupIntervalMs', DEFAULT_LOOKUP_INTERVAL_MS),
    reannounceIntervalMs: positive(options.reannounceIntervalMs, 'reannounceIntervalMs', DEFAULT_REANNOUNCE_INTERVAL_MS),
    onError: options.onError ?? (() => {}),
  };
}

/** The DHT protocol id for a prefix. */
export function kadProtocol(prefix: string): string {
  return `${prefix}/kad/1.0.0`;
}

/** Rhizome's stream protocol id for a prefix. */
export function syncProtocol(prefix: string): string {
  return `${prefix}/sync/1.0.0`;
}
