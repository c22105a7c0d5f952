/**
 * @rhizome/core: the contracts every Rhizome layer builds on. Depends only on @noble/hashes.
 * @packageDocumentation
 */
export type { TopicHash, JsonValue, PeerInfo, Connection, ConnectionListener, ConnectOptions, TopicBroadcast, Transport, TransportMode, TransportConfig, TlsOptions, Closeable, PeerPath } from './types.js';
export type { SyncEvent, HealthState, HealthSeverity } from './events.js';
export { deriveTopic, topicToHex, topicFromHex, topicEquals, assertTopic, generateDatabaseId, flatHex, TOPIC_LENGTH } from './topic.js';
export { SyncBroadcaster, DEFAULT_SUBSCRIBER_CAPACITY } from './broadcaster.js';
export type { Subscription, SubscribeOptions, LaggedEvent } from './broadcaster.js';
export { AsyncQueue, QueuedConnection } from './async-queue.js';
export type { QueueListener } from './async-queue.js';
export { MemoryTransport, MemoryHub, MEMORY_MAX_MESSAGE_SIZE, MEMORY_HIGH_WATER_MARK } from './memory.js';
export type { MemoryTransportOptions } from './memory.js';
export { DisabledTransport } from './disabled.js';
export { BroadcastChannelTransport, BROADCAST_CHANNEL_MAX_MESSAGE_SIZE, BROADCAST_CHANNEL_LOOKUP_MS } from './broadcast-channel.js';
export type { BroadcastChannelTransportOptions } from './broadcast-channel.js';
export { createTransport, loadedTransport } from './create.js';
export { randomId, RANDOM_POOL_BYTES } from './random.js';
export { joinTicker, leaveTicker, TICK_CHUNK } from './ticker.js';
export { rareRecordIsEmpty } from './rare.js';
export type { Tickable } from './ticker.js';
export {
  resolveTransportConfig,
  resolveTlsOptions,
  normalizeRelayUrl,
  DEFAULT_MODE,
  DEFAULT_TIMEOUT_MS,
  DEFAULT_RELAY_PORT,
  DEFAULT_NETWORK_MAX_MESSAGE_SIZE,
} from './config.js';
export { MemoryStore } from './store.js';
export type { DocStore, StoredDoc, StoreStats } from './store.js';
export * from './errors.js';
export {
  MAILBOX_KEY_BYTES,
  MAILBOX_SIGNATURE_BYTES,
  MAILBOX_SIGNED_BYTES,
  MAILBOX_HEADER_BYTES,
  MAILBOX_SIGN_LABEL,
  MailboxOp,
  MailboxStatus,
  mailboxStatusName,
  decodeMailboxHeader,
  encodeMailboxUnsigned,
  mailboxSigningBytes,
  checkMailboxSequence,
  mailboxOf,
  callOfferListener,
  readU64,
  writeU64,
} from './mailbox.js';
export type { MailboxOpCode, MailboxStatusName, MailboxHeader, MailboxOffer, MailboxRecord, MailboxReadResult, MailboxWriteResult, MailboxAccess, MailboxOfferListener } from './mailbox.js';
