/**
 * @rhizome/sync: the Rhizome database. A Yjs document of JSON nodes, persisted in SQLite,
 * reconciled with y-protocols sync over any Transport, sealed end to end.
 * @packageDocumentation
 */
export { openDatabase, Database, MIN_FRAME_BYTES, DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_QUEUED_BYTES, CLOSE_DRAIN_MS } from './database.js';
export type { CloseOptions, DatabaseOptions, DatabaseStats, WhenDeliveredOptions, WhenSyncedOptions } from './database.js';
export { DEFAULT_FLUSH_TIMEOUT_MS, DeliveryTimeoutError } from './delivery.js';
export type { PeerStats } from './session.js';
export { NODES_MAP, FIELDS_MAP } from './nodes.js';
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
  REQUEST_ID_LENGTH,
  Reassembler,
  toFrames,
  decodeMessage,
} from './wire.js';
export { DocPersistence, PERSISTENCE_ORIGIN, compactStoredDoc, DEFAULT_COMPACT_AFTER_UPDATES, DEFAULT_COMPACT_AFTER_BYTES } from './persistence.js';
export type { PersistenceOptions, LoadResult, CompactResult } from './persistence.js';
