import { InvalidConfigError } from '@rhizome/core';

/** Options of the Redis scale-out (`createRelayServer({ redis })`). */
export interface RedisClusterOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://` (TLS). */
  url: string;
  /** Prefix of every key and channel, so several relay clusters can share one Redis. Default `rhizome:relay:`. */
  prefix?: string;
  /**
   * How long an instance that stopped sending heartbeats (killed, hung, cut off from Redis)
   * is remembered: after this its peers are gone for the others (PEER_LEFT). Default 5000 ms.
   */
  instanceTtlMs?: number;
  /** Heartbeat interval; default a quarter of `instanceTtlMs`. */
  heartbeatMs?: number;
  /**
   * Bytes published and not yet acknowledged by Redis before this instance treats Redis as
   * failing (it drops its cross-instance state and reconnects). Default 64 MiB.
   */
  maxBacklogBytes?: number;
  /** How long `createRelayServer` waits for Redis before it starts degraded. Default 5000 ms. */
  connectTimeoutMs?: number;
}

/** Validated options. */
export interface ResolvedClusterOptions {
  url: string;
  prefix: string;
  instanceTtlMs: number;
  heartbeatMs: number;
  maxBacklogBytes: number;
  connectTimeoutMs: number;
}

/** Defaults of the scale-out. */
export const DEFAULT_CLUSTER_OPTIONS = Object.freeze({
  prefix: 'rhizome:relay:',
  instanceTtlMs: 5000,
  maxBacklogBytes: 64 * 1024 * 1024,
  connectTimeoutMs: 5000,
});

function positive(value: unknown, field: string, min = 1): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) throw new InvalidConfigError(field, `must be an integer of at least ${min}`);
  return value;
}

/** Validates `redis` (a URL or options); a bad field throws `ERR_INVALID_CONFIG` naming it. */
export function resolveClusterOptions(input: string | RedisClusterOptions): ResolvedClusterOptions {
  const options: RedisClusterOptions = typeof input === 'string' ? { url: input } : input;
  if (options === null || typeof options !== 'object') throw new InvalidConfigError('redis', 'must be a redis:// URL or { url, ... }');
  if (typeof options.url !== 'string') throw new InvalidConfigError('redis', 'must be a redis:// URL');
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new InvalidConfigError('redis', `'${options.url}' is not a URL (redis://host:port)`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new InvalidConfigError('redis', `scheme must be redis:// or rediss://, got '${url.protocol}//'`);
  if (url.hostname === '') throw new InvalidConfigError('redis', `'${options.url}' has no host`);
  const prefix = options.prefix ?? DEFAULT_CLUSTER_OPTIONS.prefix;
  if (typeof prefix !== 'string' || prefix.length > 64) throw new InvalidConfigError('redis.prefix', 'must be a string of at most 64 characters');
  const instanceTtlMs = positive(options.instanceTtlMs, 'redis.instanceTtlMs', 200) ?? DEFAULT_CLUSTER_OPTIONS.instanceTtlMs;
  const heartbeatMs = positive(options.heartbeatMs, 'redis.heartbeatMs', 10) ?? Math.max(50, Math.floor(instanceTtlMs / 4));
  if (heartbeatMs * 2 > instanceTtlMs) throw new InvalidConfigError('redis.heartbeatMs', 'must be at most half of instanceTtlMs');
  return {
    url: options.url,
    prefix,
    instanceTtlMs,
    heartbeatMs,
    maxBacklogBytes: positive(options.maxBacklogBytes, 'redis.maxBacklogBytes', 1024 * 1024) ?? DEFAULT_CLUSTER_OPTIONS.maxBacklogBytes,
    connectTimeoutMs: positive(options.connectTimeoutMs, 'redis.connectTimeoutMs') ?? DEFAULT_CLUSTER_OPTIONS.connectTimeoutMs,
  };
}
