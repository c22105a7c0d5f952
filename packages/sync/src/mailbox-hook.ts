import type * as Y from 'yjs';
import { deriveTopic, mailboxOf } from '@rhizome/core';
import type { DocStore, MailboxAccess, Transport } from '@rhizome/core';
import { MailboxKeys } from './mailbox-keys.js';
import { MailboxSync, isMailboxWrite, type MailboxStatusInfo } from './mailbox.js';
import { MultiTransport } from './multi-transport.js';
import { bytesToText, textToBytes } from './compact.js';

/** A database's view of the relay mailbox it uses (`db.mailbox`). */
export interface DatabaseMailbox {
  /** Where this replica stands with the mailbox (the first one, with several relays): cursor, highest counter seen, usage, pending writes. */
  status(): MailboxStatusInfo;
  /** Resolves once a mailbox session is up, caught up, and every local write deposited; `ERR_TIMEOUT` after `timeoutMs` (30 s). */
  whenIdle(options?: { timeoutMs?: number }): Promise<void>;
  /** Replaces the mailbox by one sealed snapshot now (it also happens by itself); resolves once written. */
  compact(options?: { timeoutMs?: number }): Promise<void>;
}

/** @internal What the database holds: the public view plus `close()` and its update hook. */
export interface MailboxBinding extends DatabaseMailbox {
  close(): Promise<void>;
  /**
   * Called by the database's own `'update'` listener with every update of its document (a
   * binding registers no listener of its own until the mailbox is in use).
   */
  noteUpdate(origin: unknown, tr: Y.Transaction): void;
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
  material: Uint8Array,
  onError: (error: Error) => void,
): MailboxBinding | null {
  // Several transports at once (a MultiTransport): one binding per part that reaches a mailbox.
  const parts = transport instanceof MultiTransport ? transport.parts.map((p) => p.transport) : [transport];
  const accesses = parts.map((t) => mailboxOf(t)).filter((a) => a !== undefined);
  if (accesses.length === 0) return null;
  // No copy of the material when it is the id's UTF-8 (a database without a secret): derived again at bind.
  const ownMaterial = bytesEqual(material, utf8(docId)) ? null : bytesToText(material);
  const inputs: MailboxInputs = { doc, store, docId, material: ownMaterial, onError, keys: null };
  const syncs = accesses.map((access) => new DeferredMailbox(inputs, access));
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
    noteUpdate: (origin, tr) => {
      for (const s of syncs) s.noteUpdate(origin, tr);
    },
  };
}

/**
 * What a deferred binding needs to make the real one: one plain object per database (no closure
 * over the attaching scope). The topic is derived again from the id at bind, and the key material
 * is kept only when a secret gave it (as a one-char-per-byte string: a `Uint8Array` costs ~250 B
 * of heap with its buffer, a string of ~40 chars ~60 B); without one it is the id's UTF-8.
 */
interface MailboxInputs {
  readonly doc: Y.Doc;
  readonly store: DocStore;
  readonly docId: string;
  /** The key material, one char per byte; null when it is `utf8(docId)`. */
  readonly material: string | null;
  readonly onError: (error: Error) => void;
  keys: MailboxKeys | null;
}

const encoder = new TextEncoder();

function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** {@link DeferredMailbox}'s yes/no states, as bits of one field. */
const DIRTY = 1;
const CLOSED = 2;
const OFFER_LISTENING = 4;

/**
 * A mailbox binding made when it is needed: at the first offer of a mailbox (or the first call
 * of `status`, `whenIdle`, `compact`). Until then it only remembers whether local writes
 * happened (told by the database's own update listener: {@link noteUpdate}), so a replica whose relay offers no mailbox holds no keys, no loaded mailbox state
 * and no binding (~3.6 KiB per database, measured).
 */
class DeferredMailbox implements MailboxBinding {
  readonly #inputs: MailboxInputs;
  readonly #access: MailboxAccess;
  #sync: MailboxSync | null = null;
  /** {@link DIRTY}, {@link CLOSED}, {@link OFFER_LISTENING} (while it listens for an offer: {@link handleOffer}). */
  #flags = 0;
  /**
   * The function that stops it, kept only for an access that does not take this binding as its
   * listener and remove it by `offOffer` (the relay's does: `objectListeners`).
   */
  #stopOffer: (() => void) | null;

  constructor(inputs: MailboxInputs, access: MailboxAccess) {
    this.#inputs = inputs;
    this.#access = access;
    // An access that takes object listeners is given the binding itself (no closure); any other
    // calls its listeners as functions, so it gets one (MailboxAccess.objectListeners).
    const itself = access.objectListeners === true;
    const stop = access.onOffer(itself ? this : () => this.handleOffer());
    this.#flags |= OFFER_LISTENING;
    this.#stopOffer = itself && access.offOffer !== undefined ? null : stop;
  }

  get #closed(): boolean {
    return (this.#flags & CLOSED) !== 0;
  }

  /** @internal {@link MailboxOfferListener}: the binding is its own offer listener (no closure kept). */
  handleOffer(): void {
    this.#bind();
  }

  #stopListeningForOffers(): void {
    if ((this.#flags & OFFER_LISTENING) === 0) return;
    this.#flags &= ~OFFER_LISTENING;
    if (this.#stopOffer !== null) this.#stopOffer();
    else this.#access.offOffer?.(this);
    this.#stopOffer = null;
  }

  /** Until bound: remembers whether a local write happened (the bound MailboxSync listens itself). */
  noteUpdate(origin: unknown, tr: Y.Transaction): void {
    if (this.#sync === null && !this.#closed && isMailboxWrite(origin, tr)) this.#flags |= DIRTY;
  }

  #bind(): MailboxSync {
    if (this.#sync !== null) return this.#sync;
    this.#stopListeningForOffers();
    // It follows the offers itself from now on (the current one is handed to it at once); after
    // close() it only answers status().
    const i = this.#inputs;
    // One key set for every binding of the database (several relays), derived on first use.
    const keys = (i.keys ??= new MailboxKeys(i.material === null ? utf8(i.docId) : textToBytes(i.material), deriveTopic(i.docId)));
    const sync = new MailboxSync(i.doc, this.#access, keys, i.store, i.docId, { onError: i.onError, dirty: (this.#flags & DIRTY) !== 0 });
    if (!this.#closed) sync.start();
    this.#sync = sync;
    return this.#sync;
  }

  status(): MailboxStatusInfo {
    return this.#bind().status();
  }

  whenIdle(options?: { timeoutMs?: number }): Promise<void> {
    return this.#bind().whenIdle(options);
  }

  compact(options?: { timeoutMs?: number }): Promise<void> {
    return this.#bind().compact(options);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#flags |= CLOSED;
    if (this.#sync !== null) return this.#sync.close();
    this.#stopListeningForOffers();
  }
}
