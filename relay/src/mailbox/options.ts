import { InvalidConfigError } from '@rhizome/core';

/** Bounds an operator sets on a relay's mailbox. Every field has a default ({@link DEFAULT_MAILBOX_LIMITS}). */
export interface MailboxLimits {
  /** Bytes (record headers + sealed payloads) one mailbox may hold; a deposit beyond it is refused FULL. */
  maxMailboxBytes: number;
  /** Records one mailbox may hold; a deposit beyond it is refused FULL. */
  maxEntries: number;
  /** Mailboxes the relay holds at most; a write that would open one more is refused RELAY_FULL. */
  maxMailboxes: number;
  /** Largest sealed payload of one record (at most `maxMailboxBytes`). */
  maxEntryBytes: number;
  /** A mailbox not written for this long is deleted (seconds). */
  ttlSeconds: number;
  /** Sustained writes per minute per mailbox (token bucket); beyond it: RATE. */
  writesPerMinute: number;
  /** Writes one mailbox may take in a burst above that rate. */
  writeBurst: number;
  /** Bytes of mailbox transfers (uploads in progress, reads being sent) the relay holds in memory at once; beyond it: BUSY. */
  maxTransferBytes: number;
}

/** Options of a relay's mailbox: the file, and limits. */
export interface MailboxOptions extends Partial<MailboxLimits> {
  /** The SQLite file (created if missing). */
  path: string;
}

/**
 * Defaults: a 32 MiB mailbox holds a compacted database of about 300,000 nodes with room for
 * deposits; 1,000 mailboxes bound the disk at about 32 GiB. Operators size both to their disk:
 * the file never holds more than `maxMailboxes × maxMailboxBytes` of records.
 */
export const DEFAULT_MAILBOX_LIMITS: Readonly<MailboxLimits> = Object.freeze({
  maxMailboxBytes: 32 * 1024 * 1024,
  maxEntries: 10_000,
  maxMailboxes: 1_000,
  maxEntryBytes: 32 * 1024 * 1024,
  ttlSeconds: 30 * 24 * 3600,
  writesPerMinute: 600,
  writeBurst: 120,
  maxTransferBytes: 256 * 1024 * 1024,
});

/** Validated mailbox options. */
export interface ResolvedMailboxOptions extends MailboxLimits {
  path: string;
}

const FIELDS: ReadonlyArray<keyof MailboxLimits> = [
  'maxMailboxBytes',
  'maxEntries',
  'maxMailboxes',
  'maxEntryBytes',
  'ttlSeconds',
  'writesPerMinute',
  'writeBurst',
  'maxTransferBytes',
];

/** Applies defaults and validates; a bad field throws `ERR_INVALID_CONFIG` naming it (`mailbox.<field>`). */
export function resolveMailboxOptions(options: string | MailboxOptions): ResolvedMailboxOptions {
  const given: MailboxOptions = typeof options === 'string' ? { path: options } : options;
  if (given === null || typeof given !== 'object') throw new InvalidConfigError('mailbox', 'must be a file path or { path, ...limits }');
  if (typeof given.path !== 'string' || given.path.length === 0) throw new InvalidConfigError('mailbox.path', 'must be a non-empty file path');
  const known = new Set<string>(['path', ...FIELDS]);
  for (const key of Object.keys(given)) if (!known.has(key)) throw new InvalidConfigError(`mailbox.${key}`, 'is not a mailbox option');
  const out: ResolvedMailboxOptions = { ...DEFAULT_MAILBOX_LIMITS, path: given.path };
  for (const field of FIELDS) {
    const value = given[field];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw new InvalidConfigError(`mailbox.${field}`, 'must be a positive integer');
    out[field] = value;
  }
  if (given.maxEntryBytes === undefined) out.maxEntryBytes = Math.min(out.maxEntryBytes, out.maxMailboxBytes);
  if (out.maxEntryBytes > out.maxMailboxBytes) throw new InvalidConfigError('mailbox.maxEntryBytes', 'must be at most maxMailboxBytes');
  if (out.maxEntryBytes > 0xffffffff) throw new InvalidConfigError('mailbox.maxEntryBytes', 'must fit in 32 bits');
  if (out.maxEntries > 0xffffffff) throw new InvalidConfigError('mailbox.maxEntries', 'must fit in 32 bits');
  if (out.ttlSeconds > 0xffffffff) throw new InvalidConfigError('mailbox.ttlSeconds', 'must fit in 32 bits');
  if (out.writesPerMinute > 0xffffffff) throw new InvalidConfigError('mailbox.writesPerMinute', 'must fit in 32 bits');
  return out;
}
