// Rhizome in real pages: Debian's Chromium (playwright-core), pages built by esbuild through
// the browser entry of @rhizome/sync, IndexedDB stores, a relay and a Node replica on 127.0.0.1.
// One browser for the whole file; each scenario takes its own contexts (origins' storage is
// per context) and database id.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDatabaseId } from '@rhizome/core';
import { createRelayServer, type RelayServer } from '@rhizome/relay';
import { openDatabase, type Database } from '@rhizome/sync';
import { RelayTransport } from '@rhizome/transport-relay';
import { until } from '../sync-helpers.js';
import { HarnessPage, launchChromium, serveHarnessPage, type StaticServer } from './harness.js';

const WAIT = 20_000;
let browser: Browser;
let site: StaticServer;
let dir: string;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rhizome-browser-'));
  [browser, site] = await Promise.all([launchChromium(), serveHarnessPage()]);
}, 60_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await site?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A fresh browser profile slice (its own IndexedDB) with one harness page loaded. */
async function newPage(context?: BrowserContext): Promise<HarnessPage> {
  let ctx = context;
  if (!ctx) {
    ctx = await browser.newContext();
    contexts.push(ctx);
  }
  const page = new HarnessPage(await ctx.newPage());
  await page.load(site.url);
  return page;
}

/** A Node replica with its own SQLite file, reconnecting fast when the relay comes back. */
async function nodeReplica(id: string, relayUrl: string): Promise<{ db: Database; close: () => Promise<void> }> {
  const transport = new RelayTransport({ url: relayUrl, reconnect: { initialDelayMs: 50, maxDelayMs: 300 } });
  const db = await openDatabase({ id, path: join(dir, `${id}.db`), transport });
  return {
    db,
    close: async () => {
      await db.close();
      await transport.disconnect();
    },
  };
}

function sorted(ids: string[]): string[] {
  return [...ids].sort();
}

describe('pages and a Node replica through a relay', () => {
  let relay: RelayServer;
  beforeAll(async () => {
    relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await relay?.close();
  });

  it('two pages and one Node replica converge; a page reloaded with the relay down keeps its data; edits made while it is down catch up when it is back', async () => {
    const id = generateDatabaseId();
    const [a, b] = await Promise.all([newPage(), newPage()]);
    const replica = await nodeReplica(id, relay.url);
    try {
      await Promise.all([a.open({ id, path: 'conv', relayUrl: relay.url }), b.open({ id, path: 'conv', relayUrl: relay.url })]);
      await Promise.all([a.putMany('a', 20), b.putMany('b', 20)]);
      replica.db.doc.transact(() => {
        for (let i = 0; i < 20; i++) replica.db.put(`n${i}`, { i, by: 'node' });
      });
      // Concurrent puts of different fields of one node both survive, everywhere.
      await a.put('shared', { fromA: 1 });
      await b.put('shared', { fromB: 2 });
      await Promise.all([a.untilSize(61, WAIT), b.untilSize(61, WAIT), until(replica.db, () => replica.db.size >= 61, 'the replica to hold 61 nodes', WAIT)]);
      const expected = sorted(replica.db.list().map((n) => n.id));
      expect(expected).toHaveLength(61);
      expect(sorted(await a.ids())).toEqual(expected);
      expect(sorted(await b.ids())).toEqual(expected);
      await until(replica.db, () => replica.db.get('shared')?.fromA === 1 && replica.db.get('shared')?.fromB === 2, 'both fields of shared', WAIT);
      await a.page.waitForFunction(() => {
        const s = (globalThis as unknown as { harness: { get(id: string): Record<string, unknown> | undefined } }).harness.get('shared');
        return s?.fromA === 1 && s.fromB === 2;
      }, undefined, { timeout: WAIT });
      expect(await b.get('shared')).toEqual({ fromA: 1, fromB: 2 });

      // The relay goes down; page A is reloaded: its data comes from IndexedDB.
      const port = relay.port;
      await a.flush();
      await relay.close();
      await a.reload();
      await a.open({ id, path: 'conv', relayUrl: `ws://127.0.0.1:${port}` });
      expect(sorted(await a.ids())).toEqual(expected);
      expect(await a.get('shared')).toEqual({ fromA: 1, fromB: 2 });

      // Edits while the relay is down, on both sides; then the relay comes back on its port.
      await a.putMany('offline-a', 10);
      replica.db.put('offline-node', { by: 'node' });
      relay = await createRelayServer({ port, host: '127.0.0.1' });
      await until(replica.db, () => replica.db.size >= 72, "the replica to receive the page's offline edits", WAIT);
      await a.untilSize(72, WAIT);
      await b.untilSize(72, WAIT);
      expect(replica.db.get('offline-a9')).toEqual({ i: 9, by: 'offline-a' });
      expect(await a.get('offline-node')).toEqual({ by: 'node' });
      expect(sorted(await b.ids())).toEqual(sorted(replica.db.list().map((n) => n.id)));
      expect(await a.errors()).toEqual([]);
    } finally {
      await Promise.all([a.close(), b.close()]).catch(() => undefined);
      await replica.close();
    }
  });

  it('a page with the wrong secret reports ERR_DECRYPT and applies nothing', async () => {
    const id = generateDatabaseId();
    const replica = await nodeReplica(id, relay.url);
    const stranger = await newPage();
    try {
      replica.db.put('secret-note', { text: 'for key holders only' });
      await stranger.open({ id, relayUrl: relay.url, secret: 'not the secret' });
      await stranger.untilError('ERR_DECRYPT', WAIT);
      await stranger.put('mine', { x: 1 });
      expect(await stranger.ids()).toEqual(['mine']);
      expect(replica.db.get('mine')).toBeUndefined();
    } finally {
      await stranger.close().catch(() => undefined);
      await replica.close();
    }
  });
});

describe('a page and its IndexedDB store', () => {
  it('reloaded right after `await db.flush()`, the page finds every write', async () => {
    const page = await newPage();
    const id = generateDatabaseId();
    await page.open({ id, path: 'durable' });
    await page.put('big', { text: 'x'.repeat(200_000) });
    // Writes, flush, and location.reload() in one go: nothing after the flush can finish writing.
    await page.writeThenReload('d', 2000, true);
    await page.open({ id, path: 'durable' });
    expect(await page.size()).toBe(2001);
    expect(await page.get('d1999')).toMatchObject({ i: 1999, by: 'd' });
    expect(((await page.get('big'))?.text as string).length).toBe(200_000);
    await page.close();
  });

  it('two tabs of one origin on one database, writing and compacting at once, neither corrupt nor lose writes', async () => {
    const ctx = await browser.newContext();
    contexts.push(ctx);
    const [x, y] = await Promise.all([newPage(ctx), newPage(ctx)]);
    const id = generateDatabaseId();
    // Small compaction threshold: both tabs compact several times while the other appends.
    await Promise.all([x.open({ id, path: 'tabs', compactAfterUpdates: 25 }), y.open({ id, path: 'tabs', compactAfterUpdates: 25 })]);
    await Promise.all([x.putMany('x', 300, true), y.putMany('y', 300, true)]);
    await Promise.all([x.close(), y.close()]);
    const z = await newPage(ctx);
    await z.open({ id, path: 'tabs' });
    const ids = await z.ids();
    expect(ids).toHaveLength(600);
    expect(ids.filter((i) => i.startsWith('x'))).toHaveLength(300);
    expect(ids.filter((i) => i.startsWith('y'))).toHaveLength(300);
    expect(await z.errors()).toEqual([]);
    await z.close();
  });

  it('two tabs with the BroadcastChannel transport see each other\'s writes live, with no network', async () => {
    const ctx = await browser.newContext();
    contexts.push(ctx);
    const [x, y] = await Promise.all([newPage(ctx), newPage(ctx)]);
    const id = generateDatabaseId();
    await Promise.all([x.open({ id, path: 'live-tabs', tabs: true }), y.open({ id, path: 'live-tabs', tabs: true })]);
    await Promise.all([x.putMany('x', 100, true), y.putMany('y', 100, true)]);
    await Promise.all([x.untilSize(200, WAIT), y.untilSize(200, WAIT)]);
    expect(sorted(await x.ids())).toEqual(sorted(await y.ids()));
    await Promise.all([x.close(), y.close()]);
    const z = await newPage(ctx);
    await z.open({ id, path: 'live-tabs' });
    expect(await z.size()).toBe(200);
    await z.close();
  });
});
