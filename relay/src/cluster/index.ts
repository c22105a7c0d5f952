/**
 * Scale-out of the relay through Redis: `createRelayServer({ redis: 'redis://host:port' })`.
 * ARCHITECTURE.md § Relay › Scale-out.
 * @packageDocumentation
 */
export { RedisRouter } from './router.js';
export type { ClusterStats } from './router.js';
export { resolveClusterOptions, DEFAULT_CLUSTER_OPTIONS } from './options.js';
export type { RedisClusterOptions, ResolvedClusterOptions } from './options.js';
export { registerClusterMetrics } from './metrics.js';
export { RedisMailboxStore } from './mailbox-store.js';
