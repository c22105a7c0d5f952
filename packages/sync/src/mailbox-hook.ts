import type * as Y from 'yjs';
import { mailboxOf } from '@rhizome/core';
import type { DocStore, TopicHash, Transport } from '@rhizome/core';
import { MailboxKeys } from './mailbox-keys.js';
import { MailboxSync, type MailboxStatusInfo } from './mailbox.js';

/** A database's view of the relay mailbox it uses (`db.mailbox`). */
export interface DatabaseMailbox {
  /** Where this replica stands with the mailbox: cursor, highest counter seen, usage, pending writes. */
  status(): MailboxStatusInfo;
  /** Resolves once a mailbox session is up, caught up, and every local write deposited; `ERR_TIMEOUT` after `timeoutMs` (30 s). */
  whenIdle(options?: { timeoutMs?: number }): Promise<void>;
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
  const access = mailboxOf(transport);
  if (access === undefined) return null;
  const sync = new MailboxSync(doc, access, new MailboxKeys(material, topic), store, docId, { onError });
  sync.start();
  return sync;
}
