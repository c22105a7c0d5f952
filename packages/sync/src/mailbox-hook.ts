import type * as Y from 'yjs';
import { deriveTopic, mailboxOf } from '@rhizome/core';
import type { DocStore, MailboxAccess, MailboxOfferListener, Transport } from '@rhizome/core';
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
 * What a mailbox binding reads of its database when it binds (the database's host: getters and a
 * method, no record of its own per database).
 */
export interface MailboxSource {
  readonly doc: Y.Doc;
  readonly store: DocStore;
  readonly docId: string;
  reportError(error: unknown): void;
  /** Mailbox keys already derived for this database (several relays share one set); absent: derived per binding. */
  keys?: MailboxKeys | null;
}

/**
 * Binds the database to the mailbox of its transport, if the transport reaches one (the relay
 * transport unless configured with `mailbox: false`); null otherwise. Keys are derived here, so
 * databases without a mailbox never pay for them.
 *
 * Given a `listener` (the database's host), the usual case — one access that takes object
 * listeners and removes them by `offOffer`, key material that is the id's own — makes no binding:
 * `listener` listens to the access for an offer, and the access itself is returned. The database
 * then holds nothing else until an offer comes or the app reads `db.mailbox`, when
 * {@link bindHeldMailbox} makes the binding (an idle replica whose relay offers no mailbox keeps
 * no binding object: ARCHITECTURE § Memory of an idle replica).
 */
export function attachMailbox(transport: Transport, source: MailboxSource, material: Uint8Array, listener?: MailboxOfferListener): MailboxBinding | MailboxAccess | null {
  // Several transports at once (a MultiTransport): one binding per part that reaches a mailbox.
  const parts = transport instanceof MultiTransport ? transport.parts.map((p) => p.transport) : [transport];
  const accesses = parts.map((t) => mailboxOf(t)).filter((a) => a !== undefined);
  if (accesses.length === 0) return null;
  // No copy of the material when it is the id's UTF-8 (a database without a secret): derived again at bind.
  const ownMaterial = bytesEqual(material, utf8(source.docId)) ? null : bytesToText(material);
  if (accesses.length === 1) {
    const access = accesses[0]!;
    if (listener !== undefined && ownMaterial === null && access.objectListeners === true && access.offOffer !== undefined) {
      access.onOffer(listener);
      return access;
    }
    return new DeferredMailbox(source, ownMaterial, access);
  }
  // One key set for every binding of the database (several relays): a source that keeps it.
  const shared: MailboxSource = {
    get doc() {
      return source.doc;
    },
    get store() {
      return source.store;
    },
    docId: source.docId,
    reportError: (error) => source.reportError(error),
    keys: null,
  };
  const syncs = accesses.map((access) => new DeferredMailbox(shared, ownMaterial, access));
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
 * The binding of a database that held its mailbox access itself ({@link attachMailbox} with a
 * listener): `listener` stops listening, and the binding is made knowing whether local writes
 * happened meanwhile (`dirty`); `offered` (an offer came) binds it at once.
 */
export function bindHeldMailbox(access: MailboxAccess, source: MailboxSource, listener: MailboxOfferListener, dirty: boolean, offered: boolean): MailboxBinding {
  access.offOffer?.(listener);
  const binding = new DeferredMailbox(source, null, access, dirty);
  if (offered) binding.handleOffer();
  return binding;
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
  /**
   * What the real binding is made of (the database's host): the topic is derived again from the
   * id at bind, and the key material is kept only when a secret gave it (`#material`, one char per
   * byte: a `Uint8Array` costs ~250 B of heap with its buffer, a string of ~40 chars ~60 B);
   * without one it is the id's UTF-8.
   */
  readonly #source: MailboxSource;
  readonly #material: string | null;
  readonly #access: MailboxAccess;
  #sync: MailboxSync | null = null;
  /** {@link DIRTY}, {@link CLOSED}, {@link OFFER_LISTENING} (while it listens for an offer: {@link handleOffer}). */
  #flags = 0;
  /**
   * The function that stops it, kept only for an access that does not take this binding as its
   * listener and remove it by `offOffer` (the relay's does: `objectListeners`).
   */
  #stopOffer: (() => void) | null;

  constructor(source: MailboxSource, material: string | null, access: MailboxAccess, dirty = false) {
    this.#source = source;
    this.#material = material;
    this.#access = access;
    if (dirty) this.#flags |= DIRTY;
    // An access that takes object listeners is given the binding itself (no closure); any other
    // calls its listeners as functions, so it gets one (MailboxAccess.objectListeners).
    const itself = access.objectListeners === true;
    const stop = access.onOffer(itself ? this : () => this.handleOffer());
    this.#flags |= OFFER_LISTENING;
    this.#stopOffer = itself && access.offOffer !== undefined ? null : stop;
  }

  // (TypeScript-private members, not `#` methods: a class with `#` methods costs each instance a
  // slot, ARCHITECTURE § Memory of an idle replica.)
  private get closed(): boolean {
    return (this.#flags & CLOSED) !== 0;
  }

  /** @internal {@link MailboxOfferListener}: the binding is its own offer listener (no closure kept). */
  handleOffer(): void {
    this.bind();
  }

  private stopListeningForOffers(): void {
    if ((this.#flags & OFFER_LISTENING) === 0) return;
    this.#flags &= ~OFFER_LISTENING;
    if (this.#stopOffer !== null) this.#stopOffer();
    else this.#access.offOffer?.(this);
    this.#stopOffer = null;
  }

  /** Until bound: remembers whether a local write happened (the bound MailboxSync listens itself). */
  noteUpdate(origin: unknown, tr: Y.Transaction): void {
    if (this.#sync === null && !this.closed && isMailboxWrite(origin, tr)) this.#flags |= DIRTY;
  }

  private bind(): MailboxSync {
    if (this.#sync !== null) return this.#sync;
    this.stopListeningForOffers();
    // It follows the offers itself from now on (the current one is handed to it at once); after
    // close() it only answers status().
    const src = this.#source;
    const material = this.#material;
    // One key set for every binding of the database (several relays: a source that keeps it), derived on first use.
    const keys = src.keys ?? new MailboxKeys(material === null ? utf8(src.docId) : textToBytes(material), deriveTopic(src.docId));
    if (src.keys === null) src.keys = keys;
    const onError = (error: Error): void => src.reportError(error);
    const sync = new MailboxSync(src.doc, this.#access, keys, src.store, src.docId, { onError, dirty: (this.#flags & DIRTY) !== 0 });
    if (!this.closed) sync.start();
    this.#sync = sync;
    return this.#sync;
  }

  status(): MailboxStatusInfo {
    return this.bind().status();
  }

  whenIdle(options?: { timeoutMs?: number }): Promise<void> {
    return this.bind().whenIdle(options);
  }

  compact(options?: { timeoutMs?: number }): Promise<void> {
    return this.bind().compact(options);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.#flags |= CLOSED;
    if (this.#sync !== null) return this.#sync.close();
    this.stopListeningForOffers();
  }
}
