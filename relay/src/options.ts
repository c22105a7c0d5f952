import { DEFAULT_NETWORK_MAX_MESSAGE_SIZE, InvalidConfigError } from '@rhizome/core';
import { DATA_HEADER_BYTES } from '@rhizome/transport-relay/protocol';
import type { MailboxService } from './mailbox/service.js';

/** Limits of a relay. Every field has a default (see {@link DEFAULT_LIMITS}). */
export interface RelayLimits {
  /** Largest frame (WebSocket message) in bytes; above it the connection closes with 1009. */
  maxFrameSize: number;
  /** Topics one connection may join or announce at once; above it: 4020. */
  maxTopicsPerConnection: number;
  /** Members (joined, paired) one topic may have; a JOIN beyond it gets ERROR TOPIC_FULL and only announces. */
  maxPeersPerTopic: number;
  /** Connections the relay holds at once; above it new ones close with 4021. */
  maxConnections: number;
  /** Connections one address holds at once; above it new ones close with 4022. */
  maxConnectionsPerIp: number;
  /** Sustained frames per second per connection (token bucket); above it: 4023. */
  maxFramesPerSecond: number;
  /** Frames a connection may send in a burst above the sustained rate. */
  frameBurst: number;
  /** Sustained bytes per second per connection (token bucket); above it: 4024. */
  maxBytesPerSecond: number;
  /** Bytes a connection may send in a burst above the sustained rate (at least `maxFrameSize`). */
  byteBurst: number;
  /** Bytes queued towards one client before it counts as not reading and is cut (4025). */
  maxBufferedBytes: number;
  /** Interval of pings; a connection that did not answer the previous one is closed (4026). 0 disables. */
  heartbeatIntervalMs: number;
  /** Time a new connection has to say HELLO (4004). */
  helloTimeoutMs: number;
  /**
   * Time an accepted TCP socket has to send a complete request (the WebSocket upgrade, or an
   * HTTP request such as `/healthz`); after it the socket is destroyed (`upgrade_timeout`).
   * Sockets not yet upgraded also count against `maxConnections` and `maxConnectionsPerIp`.
   */
  upgradeTimeoutMs: number;
  /** Time a closed client has to finish the close handshake before its socket is destroyed. */
  closeGraceMs: number;
  /** Most peers one LOOKUP reply lists. */
  maxLookupPeers: number;
}

/**
 * Default limits: a 1 MiB message plus header fits a frame; the rates are far above what a
 * sync session needs (a bulk import is split into 1 MiB frames) and well below what lets one
 * client starve the others.
 */
export const DEFAULT_LIMITS: Readonly<RelayLimits> = Object.freeze({
  maxFrameSize: DEFAULT_NETWORK_MAX_MESSAGE_SIZE + 64,
  maxTopicsPerConnection: 1024,
  maxPeersPerTopic: 1000,
  maxConnections: 10_000,
  maxConnectionsPerIp: 256,
  maxFramesPerSecond: 5_000,
  frameBurst: 20_000,
  maxBytesPerSecond: 16 * 1024 * 1024,
  byteBurst: 64 * 1024 * 1024,
  maxBufferedBytes: 16 * 1024 * 1024,
  heartbeatIntervalMs: 30_000,
  helloTimeoutMs: 10_000,
  upgradeTimeoutMs: 10_000,
  closeGraceMs: 2_000,
  maxLookupPeers: 256,
});

/** Options of the routing core ({@link RelayCore}); the HTTP host adds its own. */
export interface RelayCoreOptions extends Partial<RelayLimits> {
  /** Shared access token clients must present in HELLO. Off (undefined) by default. */
  token?: string;
  /** The sealed mailbox service (built by `createRelayServer` from its `mailbox` option). */
  mailbox?: MailboxService;
}

/** Validated core options. */
export interface ResolvedCoreOptions extends RelayLimits {
  token: string | undefined;
}

const POSITIVE_INT_FIELDS: ReadonlyArray<keyof RelayLimits> = [
  'maxFrameSize',
  'maxTopicsPerConnection',
  'maxPeersPerTopic',
  'maxConnections',
  'maxConnectionsPerIp',
  'maxFramesPerSecond',
  'frameBurst',
  'maxBytesPerSecond',
  'byteBurst',
  'maxBufferedBytes',
  'helloTimeoutMs',
  'upgradeTimeoutMs',
  'closeGraceMs',
  'maxLookupPeers',
];

/** Applies defaults and validates limits; a bad field throws `ERR_INVALID_CONFIG` naming it. */
export function resolveCoreOptions(options: RelayCoreOptions = {}): ResolvedCoreOptions {
  const out: ResolvedCoreOptions = { ...DEFAULT_LIMITS, token: undefined };
  for (const field of POSITIVE_INT_FIELDS) {
    const value = options[field];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      throw new InvalidConfigError(field, 'must be a positive integer');
    }
    out[field] = value;
  }
  if (options.heartbeatIntervalMs !== undefined) {
    const v = options.heartbeatIntervalMs;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw new InvalidConfigError('heartbeatIntervalMs', 'must be a non-negative integer (0 disables heartbeats)');
    }
    out.heartbeatIntervalMs = v;
  }
  if (out.maxFrameSize < DATA_HEADER_BYTES + 64) throw new InvalidConfigError('maxFrameSize', `must be at least ${DATA_HEADER_BYTES + 64}`);
  if (out.maxFrameSize > 0xffffffff) throw new InvalidConfigError('maxFrameSize', 'must fit in 32 bits');
  // PEERS carries its count in 16 bits: a larger list would wrap and the client would drop it.
  if (out.maxLookupPeers > 0xffff) throw new InvalidConfigError('maxLookupPeers', 'must be at most 65535');
  if (options.byteBurst === undefined) out.byteBurst = Math.max(out.byteBurst, out.maxFrameSize);
  if (out.byteBurst < out.maxFrameSize) throw new InvalidConfigError('byteBurst', 'must be at least maxFrameSize');
  if (options.maxBufferedBytes === undefined) out.maxBufferedBytes = Math.max(out.maxBufferedBytes, 2 * out.maxFrameSize);
  if (out.maxBufferedBytes < out.maxFrameSize) throw new InvalidConfigError('maxBufferedBytes', 'must be at least maxFrameSize');
  if (options.token !== undefined) {
    if (typeof options.token !== 'string' || options.token.length === 0) throw new InvalidConfigError('token', 'must be a non-empty string');
    if (new TextEncoder().encode(options.token).length > 255) throw new InvalidConfigError('token', 'must be at most 255 UTF-8 bytes');
    out.token = options.token;
  }
  return out;
}
