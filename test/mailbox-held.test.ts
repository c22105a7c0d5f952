// The mailbox access a database holds itself until an offer comes (BENCHMARKS.md § Issue 12,
// Session 13 (dbtrim)): while idle, the database's host is the access's only offer listener and no
// binding object exists; a local write made meanwhile is remembered (one bit), and the binding
// made at the offer — or at the first read of `db.mailbox` — deposits it. A scripted access over a
// local-only transport, so the moment of the offer is the test's.
import { afterEach, describe, expect, it } from 'vitest';
import { DisabledTransport, callOfferListener, generateDatabaseId } from '@rhizome/core';
import type { MailboxAccess, MailboxOffer, MailboxOfferListener, MailboxReadResult, MailboxWriteResult } from '@rhizome/core';
import { openDatabase, type Database } from '@rhizome/sync';

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

const OFFER: MailboxOffer = { maxMailboxBytes: 1 << 20, maxEntries: 100, maxEntryBytes: 1 << 16, ttlSeconds: 3600, writesPerMinute: 600 };

/** An access that takes object listeners and offers when told; an empty mailbox that accepts every write. */
class ScriptedAccess implements MailboxAccess {
  readonly serverId = 'scripted://mailbox';
  readonly objectListeners = true;
  offer: MailboxOffer | null = null;
  listeners: MailboxOfferListener[] = [];
  writes = 0;

  onOffer(listener: MailboxOfferListener): () => void {
    if (!this.listeners.includes(listener)) this.listeners = [...this.listeners, listener];
    const offer = this.offer;
    if (offer !== null) queueMicrotask(() => this.listeners.includes(listener) && callOfferListener(listener, offer));
    return () => this.offOffer(listener);
  }

  offOffer(listener: MailboxOfferListener): void {
    this.listeners = this.listeners.filter((l) => l !== listener);
  }

  /** The session's offer: every listener hears it now. */
  offerNow(): void {
    this.offer = OFFER;
    for (const listener of [...this.listeners]) callOfferListener(listener, OFFER);
  }

  read(): Promise<MailboxReadResult> {
    return Promise.resolve({ head: null, records: [], usedBytes: 0, usedEntries: 0 });
  }

  write(): Promise<MailboxWriteResult> {
    this.writes++;
    return Promise.resolve({ head: this.writes, usedBytes: 1, usedEntries: this.writes });
  }
}

/** A local-only transport that reaches `mailbox`. */
class MailboxTransport extends DisabledTransport {
  constructor(readonly mailbox: ScriptedAccess) {
    super();
  }
}

async function open(access: ScriptedAccess): Promise<Database> {
  const transport = new MailboxTransport(access);
  const db = await openDatabase({ id: generateDatabaseId(), transport });
  cleanup.push(() => transport.disconnect());
  cleanup.push(() => db.close({ flushTimeoutMs: 0 }));
  return db;
}

/** True if `listener` is a mailbox binding (what the database held before Session 13: one per database). */
function isBinding(listener: MailboxOfferListener): boolean {
  return typeof (listener as { noteUpdate?: unknown }).noteUpdate === 'function';
}

describe('the mailbox access a database holds until an offer', () => {
  it('is listened to by the host alone while no offer came; the binding made at the offer deposits a write made before it', async () => {
    const access = new ScriptedAccess();
    const db = await open(access);
    expect(access.listeners).toHaveLength(1);
    const host = access.listeners[0]!;
    expect(isBinding(host)).toBe(false);
    db.put('early', { v: 1 });
    await new Promise((resolve) => setImmediate(resolve));
    expect(access.listeners).toEqual([host]); // a write makes no binding either
    access.offerNow();
    // The offer made the binding and bound it: the host no longer listens, and the write made
    // while the access was held is pending in it (it is deposited next).
    expect(access.listeners).not.toContain(host);
    const mailbox = db.mailbox!;
    expect(mailbox.status().pending).toBe(true);
    await mailbox.whenIdle({ timeoutMs: 10_000 });
    expect(access.writes).toBeGreaterThan(0);
    expect(mailbox.status().pending).toBe(false);
    expect(db.mailbox).toBe(mailbox);
  });

  it('reading db.mailbox before an offer makes the binding then, which remembers the write and binds at the offer', async () => {
    const access = new ScriptedAccess();
    const db = await open(access);
    const host = access.listeners[0]!;
    db.put('early', { v: 1 });
    const mailbox = db.mailbox!;
    expect(access.listeners).not.toContain(host);
    expect(access.listeners.some(isBinding)).toBe(true); // the binding listens itself now
    expect(db.mailbox).toBe(mailbox);
    expect(mailbox.status().available).toBe(false);
    expect(mailbox.status().pending).toBe(true);
    access.offerNow();
    await mailbox.whenIdle({ timeoutMs: 10_000 });
    expect(access.writes).toBeGreaterThan(0);
    expect(mailbox.status().available).toBe(true);
  });

  it('a database that wrote nothing before the offer has nothing pending at it; close stops the host listening', async () => {
    const access = new ScriptedAccess();
    const db = await open(access);
    const host = access.listeners[0]!;
    expect(isBinding(host)).toBe(false);
    await db.close({ flushTimeoutMs: 0 });
    expect(access.listeners).toEqual([]);
    const other = await open(access);
    access.offerNow();
    expect(other.mailbox!.status().pending).toBe(false);
  });
});
