/**
 * Where a relay keeps its mailboxes. {@link MailboxService} (the protocol: signatures, rates,
 * transfers) works on this interface only; `SqliteMailboxStore` (one embedded SQLite file,
 * `--mailbox FILE`) implements it, and a scaled-out relay can put the same records in Redis.
 *
 * Every method is asynchronous so that a networked store fits. `commit` must be atomic per
 * mailbox: the sequence check against the head, the quotas and the write happen as one step
 * (SQLite: one transaction; Redis: one script), so two relays or two writers never both win.
 */
export interface MailboxStore {
  /** Records with a counter above `after`, oldest first, with the head and the usage, read consistently. */
  read(mailbox: Uint8Array, after: number): Promise<MailboxSnapshot>;
  /**
   * Applies one verified record: checks it against the head (`checkMailboxSequence` from
   * `@rhizome/core`), then the quotas, then stores it — a DEPOSIT is appended, a SNAPSHOT or
   * TRUNCATE replaces every record of the mailbox. Returns the status (`MailboxStatus`) and the
   * head and usage after the call (before it, on a refusal).
   */
  commit(request: MailboxCommit): Promise<MailboxCommitResult>;
  /** Deletes every mailbox last written before `lastWriteBefore` (ms since the epoch); returns how many. */
  expire(lastWriteBefore: number): Promise<number>;
  /** Totals over every mailbox. */
  stats(): Promise<MailboxStoreStats>;
  /** Releases the store. Idempotent. */
  close(): Promise<void>;
}

/** One stored record. */
export interface StoredMailboxRecord {
  counter: number;
  /** The 117-byte signed header. */
  header: Uint8Array;
  /** The sealed payload. */
  payload: Uint8Array;
}

/** What {@link MailboxStore.read} returns. An unknown mailbox reads as empty (`head` null). */
export interface MailboxSnapshot {
  /** Header of the newest record, or null. */
  head: Uint8Array | null;
  /** Counter of the newest record (0 when empty). */
  headCounter: number;
  records: StoredMailboxRecord[];
  /** Bytes (headers + payloads) and records the mailbox holds. */
  bytes: number;
  entries: number;
}

/** A record to store, already verified (signature, digest, length) by the service. */
export interface MailboxCommit {
  mailbox: Uint8Array;
  header: Uint8Array;
  op: number;
  counter: number;
  prev: number;
  payload: Uint8Array;
  /** Time of the write (ms since the epoch): the TTL counts from the last one. */
  now: number;
  limits: MailboxQuota;
}

/** The quotas a commit is checked against. */
export interface MailboxQuota {
  maxMailboxBytes: number;
  maxEntries: number;
  maxMailboxes: number;
}

/** Result of {@link MailboxStore.commit}. */
export interface MailboxCommitResult {
  /** A `MailboxStatus` value. */
  status: number;
  head: number;
  bytes: number;
  entries: number;
}

/** Totals of a store. */
export interface MailboxStoreStats {
  mailboxes: number;
  entries: number;
  bytes: number;
}

/** Bytes a record counts against its mailbox's quota: its header and its payload. */
export function recordBytes(payloadLength: number): number {
  return 117 + payloadLength;
}
