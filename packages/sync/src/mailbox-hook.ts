import type * as Y from 'yjs';
import { mailboxOf } from '@rhizome/core';
import type { DocStore, TopicHash, Transport } from '@rhizome/core';
import { MailboxKeys } from './mailbox-keys.js';
import { MailboxSync, type MailboxStatusInfo } from './mailbox.js';
import { MultiTransport } from './multi-transport.js';

/** A database's view of the relay mailbox it uses (`db.mailbox`). */
export interface DatabaseMailbox {
  /** Where this replica stands with the mailbox (the first one, with several relays): cursor, highest counter seen, usage, pending writes. */
  status(): MailboxStatusInfo;
  /** Resolves once a mailbox session is up, caught up, and every local write deposited; `ERR_TIMEOUT` after `timeoutMs` (30 s). */
  whenIdle(options?: { timeoutMs?: number }): Promise<void>;
  /** Replaces the mailbox by one sealed snapshot now (it also happens by itself); resolves once written. */
  compact(options?: { timeoutMs?: number }): Promise<void>;
}

/** @internal What the database holds: the public view plus `close()`. */
export interface MailboxBinding extends DatabaseMailbox {
  close(): Promise<void>;
}

/**
 * Binds the database to the mailbox of its transport, if the transport reaches one (the relay
 * transport unless configured with `mailbox: false`); null otherwise. Keys are derived here, so
 * databases without a mailbox never pay for them.
 */
export function attachMailbox(
  transport: Transport,
  doc: Y.Doc,
  store: DocStore,
  docId: string,
  topic: TopicHash,
  material: Uint8Array,
  onError: (error: Error) => void,
): MailboxBinding | null {
  // Several transports at once (a MultiTransport): one binding per part that reaches a mailbox.
  const parts = transport instanceof MultiTransport ? transport.parts.map((p) => p.transport) : [transport];
  const accesses = parts.map((t) => mailboxOf(t)).filter((a) => a !== undefined);
  if (accesses.length === 0) return null;
  const keys = new MailboxKeys(material, topic);
  const syncs = accesses.map((access) => new MailboxSync(doc, access, keys, store, docId, { onError }));
  for (const s of syncs) s.start();
  if (syncs.length === 1) return syncs[0]!;
  return {
    status: () => syncs[0]!.status(),
    whenIdle: async (options) => {
      await Promise.all(syncs.map((s) => s.whenIdle(options)));
    },
    compact: async (options) => {
      await Promise.all(syncs.map((s) => s.compact(options)));
    },
    close: async () => {
      await Promise.all(syncs.map((s) => s.close()));
    },
  };
}
