/**
 * @rhizome/relay: a stateless WebSocket relay that routes sealed frames between the peers of
 * a topic. It keeps nothing on disk and never sees a database id or plaintext.
 *
 * - {@link createRelayServer}: the HTTP(S) host (WebSocket, `/healthz`, `/metrics`).
 * - {@link RelayCore}: the routing core, usable on any WebSocket-like socket.
 * - {@link RelayWebSocket}: the `ws` WebSocket class the server uses (events go to the core
 *   without listeners; pass it as `WebSocket` to a `WebSocketServer` around a {@link RelayCore}).
 * - {@link RELAY_NODE_FLAGS}: the Node flags a relay process runs with (`@rhizome/relay/node-flags`,
 *   also importable alone); `rhizome-relay` and `rhizome relay` apply them themselves.
 * - {@link CloseCode}: the close codes (shared with `@rhizome/transport-relay`).
 * - {@link MailboxService} / `MailboxStore`: the opt-in sealed mailbox (`mailbox` option); the
 *   SQLite store is `@rhizome/relay/mailbox-sqlite` (loaded by the server only when asked for).
 *
 * @packageDocumentation
 */
export { createRelayServer, createMailboxService } from './server.js';
export type { RelayServer, RelayServerOptions, PemSource } from './server.js';
export { RelayCore } from './core.js';
export type { RelaySocket, ConnectionInfo, RelayStats, DropReason } from './core.js';
export { isDirectSocket } from './direct-socket.js';
export { RelayWebSocket } from './relay-websocket.js';
export type { DirectSocket, DirectEvents } from './direct-socket.js';
export { DEFAULT_LIMITS, resolveCoreOptions } from './options.js';
export type { RelayLimits, RelayCoreOptions } from './options.js';
export { createMetricsRegistry } from './metrics.js';
export { snapshotMetrics } from './snapshot-metrics.js';
export type { SnapshotMetrics } from './snapshot-metrics.js';
export { RedisRouter, RedisMailboxStore, resolveClusterOptions, DEFAULT_CLUSTER_OPTIONS, registerClusterMetrics } from './cluster/index.js';
export type { ClusterStats, RedisClusterOptions } from './cluster/index.js';
export type { RelayRouter, RouterHost, RoutedPeer, RoutedTopic, LookupEntry } from './router.js';
export { MailboxService } from './mailbox/service.js';
export type { MailboxPeer, MailboxCoreHooks, MailboxServiceStats } from './mailbox/service.js';
export { DEFAULT_MAILBOX_LIMITS, resolveMailboxOptions } from './mailbox/options.js';
export type { MailboxLimits, MailboxOptions, ResolvedMailboxOptions } from './mailbox/options.js';
export { recordBytes } from './mailbox/store.js';
export type { MailboxStore, MailboxSnapshot, MailboxCommit, MailboxCommitResult, MailboxQuota, MailboxStoreStats, StoredMailboxRecord } from './mailbox/store.js';
export { parseRelayArgs, RELAY_USAGE } from './args.js';
export { RELAY_NODE_FLAGS, RELAY_MAX_SEMI_SPACE_MIB, missingRelayNodeFlags, maxSemiSpaceMiB, relaunchWithRelayNodeFlags } from './node-flags.js';
export { CloseCode, closeCodeName, isFatalCloseCode, PROTOCOL_VERSION } from '@rhizome/transport-relay/protocol';
export type { CloseCodeName } from '@rhizome/transport-relay/protocol';
