import type { JsonValue, TopicHash } from './types.js';
import type { LaggedEvent } from './broadcaster.js';

/** What a database reports on its `events` broadcaster. */
export type SyncEvent =
  | { type: 'peer-connected'; peerId: string; topic: TopicHash }
  | { type: 'peer-disconnected'; peerId: string; topic: TopicHash; reason?: string }
  | { type: 'node-upsert'; id: string; data: Record<string, JsonValue>; origin: 'local' | 'remote' }
  | { type: 'node-delete'; id: string; origin: 'local' | 'remote' }
  | { type: 'synced'; peerId: string }
  | { type: 'error'; error: Error & { code?: string } }
  | LaggedEvent;
