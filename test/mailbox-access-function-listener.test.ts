// A MailboxAccess written to the function-listener contract (`onOffer(listener)` calls
// `listener(offer)`, as MailboxAccess was until ace80be made listeners possibly objects): a
// database over a transport offering it must hand it a function, not its binding object.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateDatabaseId, type MailboxAccess, type MailboxOffer, type Transport } from '@rhizome/core';
import { within } from '@rhizome/core/testing';
import { createRelayServer } from '@rhizome/relay';
import { RelayTransport } from '@rhizome/transport-relay';
import { openDatabase } from '@rhizome/sync';

const WAIT = 15_000;
const cleanup: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** A third party's access: its own listener set, each listener called as a function; no offOffer. */
class FunctionListenerAccess {
  readonly #inner: MailboxAccess;
  readonly #listeners = new Set<(offer: MailboxOffer) => void>();
  readonly errors: unknown[] = [];
  heard = 0;

  constructor(inner: MailboxAccess) {
    this.#inner = inner;
    inner.onOffer((offer) => {
      for (const listener of [...this.#listeners]) this.#call(listener, offer);
    });
  }

  #call(listener: (offer: MailboxOffer) => void, offer: MailboxOffer): void {
    try {
      listener(offer);
      this.heard++;
    } catch (error) {
      this.errors.push(error);
    }
  }

  get serverId(): string {
    return this.#inner.serverId;
  }

  get offer(): MailboxOffer | null {
    return this.#inner.offer;
  }

  onOffer(listener: (offer: MailboxOffer) => void): () => void {
    this.#listeners.add(listener);
    const offer = this.#inner.offer;
    if (offer !== null) queueMicrotask(() => this.#call(listener, offer));
    return () => this.#listeners.delete(listener);
  }

  read(...args: Parameters<MailboxAccess['read']>): ReturnType<MailboxAccess['read']> {
    return this.#inner.read(...args);
  }

  write(...args: Parameters<MailboxAccess['write']>): ReturnType<MailboxAccess['write']> {
    return this.#inner.write(...args);
  }
}

/** The relay transport, its mailbox replaced by `access` (methods bound to the real transport). */
function withMailbox(inner: RelayTransport, access: FunctionListenerAccess): Transport {
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === 'mailbox') return access;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  }) as unknown as Transport;
}

describe('a MailboxAccess that calls its offer listeners as functions', () => {
  it('a database over it binds its mailbox at the offer: the listener it was given is a function', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rhizome-fn-offer-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const server = await createRelayServer({ port: 0, host: '127.0.0.1', mailbox: join(dir, 'mailbox.db') });
    cleanup.push(() => server.close());
    const relay = new RelayTransport({ url: server.url, timeoutMs: WAIT });
    cleanup.push(() => relay.disconnect());
    const access = new FunctionListenerAccess(relay.mailbox!);
    const db = await openDatabase({ id: generateDatabaseId(), path: join(dir, 'a.db'), transport: withMailbox(relay, access) });
    cleanup.push(() => db.close());
    db.put('n1', { text: 'to the mailbox' });
    const deadline = Date.now() + WAIT;
    while (access.heard === 0 && access.errors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(access.errors.map((e) => String(e))).toEqual([]);
    expect(access.heard).toBeGreaterThan(0);
    await within(WAIT, 'the deposit', db.mailbox!.whenIdle({ timeoutMs: WAIT }));
    expect(db.mailbox!.status().available).toBe(true);
  }, 30_000);
});
