/**
 * Everything `@rhizome/sync` exports on every platform; each entry point (index.ts for Node,
 * browser.ts for browsers) adds `openDatabase` bound to its platform. New exports go here.
 */
export { openDatabaseOn, Database, MIN_FRAME_BYTES, DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_QUEUED_BYTES, CLOSE_DRAIN_MS } from './database.js';
export type { CloseOptions, DatabaseOptions, DatabaseStats, WhenDeliveredOptions, WhenSyncedOptions } from './database.js';
export { DEFAULT_FLUSH_TIMEOUT_MS, DeliveryTimeoutError } from './delivery.js';
export type { PeerStats } from './session.js';
export { HEALTH_DEFAULTS } from './health.js';
export type { HealthOptions } from './health.js';
export type { DatabaseHealthStatus } from './monitor.js';
export { NODES_MAP, FIELDS_MAP } from './nodes.js';
export { yjsFastPaths, setFastPathWarning } from './yjs-guard.js';
export type { FastPathName, FastPathStatus } from './yjs-guard.js';
export { MAX_NODE_ID_LENGTH, MAX_VALUE_DEPTH } from './validate.js';
export { FrameSealer, keyMaterial, SEAL_VERSION, SEAL_KEY_LABEL, SEAL_AAD_LABEL, SEAL_OVERHEAD, NONCE_LENGTH, TAG_LENGTH } from './seal.js';
export {
  FRAME_WHOLE,
  FRAME_CHUNK,
  CHUNK_HEADER_LENGTH,
  MSG_SYNC_STEP1,
  MSG_SYNC_STEP2,
  MSG_UPDATES,
  MSG_AWARENESS,
  MSG_PING,
  MSG_PONG,
  MSG_BATCH,
  MAX_BATCH_MESSAGES,
  REQUEST_ID_LENGTH,
  Reassembler,
  toFrames,
  decodeMessage,
} from './wire.js';
export {
  DocPersistence,
  PERSISTENCE_ORIGIN,
  EXTERNAL_ORIGIN,
  compactStoredDoc,
  DEFAULT_COMPACT_AFTER_UPDATES,
  DEFAULT_COMPACT_AFTER_BYTES,
  DEFAULT_COMPACT_IDLE_MS,
  DEFAULT_WATCH_INTERVAL_MS,
  RETRY_MIN_MS,
  RETRY_MAX_MS,
} from './persistence.js';
export type { PersistenceOptions, LoadResult, CompactResult, StorageHealth, StorageStatus } from './persistence.js';
export type { Platform, Macrotask } from './platform/types.js';
export { MailboxKeys, MAILBOX_SIGN_KEY_LABEL, MAILBOX_SEAL_KEY_LABEL, MAILBOX_AAD_LABEL } from './mailbox-keys.js';
export { MailboxSync, MAILBOX_ORIGIN, DEFAULT_DEPOSIT_DELAY_MS, MAILBOX_CLOSE_MS } from './mailbox.js';
export type { MailboxStatusInfo, MailboxSyncOptions } from './mailbox.js';
export type { DatabaseMailbox } from './mailbox-hook.js';
export { MultiTransport } from './multi-transport.js';
export type { TransportPart } from './multi-transport.js';
export {
  MSG_REPLICA,
  REPLICA_MESSAGE_VERSION,
  REPLICA_ID_LENGTH,
  encodeReplica,
  decodeReplica,
  connectionPath,
  pathRank,
  preferred,
  ReplicaRouter,
} from './replicas.js';
export type { RoutedSession } from './replicas.js';
