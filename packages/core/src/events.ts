import type { JsonValue, TopicHash } from './types.js';
import type { LaggedEvent } from './broadcaster.js';

/** Health of a peer session or of a database: `healthy`, `degraded` (slow, silent, backed up, or failing to store), `unreachable`. */
export type HealthState = 'healthy' | 'degraded' | 'unreachable';

/** How urgent a health change is: `info` (back to healthy), `warning`, `critical`. */
export type HealthSeverity = 'info' | 'warning' | 'critical';

/** What a database reports on its `events` broadcaster. */
export type SyncEvent =
  | { type: 'peer-connected'; peerId: string; topic: TopicHash }
  | { type: 'peer-disconnected'; peerId: string; topic: TopicHash; reason?: string }
  | { type: 'node-upsert'; id: string; data: Record<string, JsonValue>; origin: 'local' | 'remote' }
  | { type: 'node-delete'; id: string; origin: 'local' | 'remote' }
  | { type: 'synced'; peerId: string }
  | { type: 'error'; error: Error & { code?: string } }
  /** A peer session's health changed (rate limited per peer). */
  | { type: 'peer-health'; peerId: string; health: HealthState; severity: HealthSeverity; reason: string }
  /** The database's own health changed: storage failing, or nobody reachable while local writes wait. */
  | { type: 'health'; health: HealthState; severity: HealthSeverity; reason: string }
  | LaggedEvent;
