// The page side of the browser tests: bundled by esbuild through the browser entry of
// @rhizome/sync (exactly what an app's bundler does) and driven with page.evaluate.
import { openDatabase, type Database } from '@rhizome/sync';
import { RelayTransport } from '@rhizome/transport-relay';
import { BroadcastChannelTransport, type JsonValue, type Transport } from '@rhizome/core';

/** Options of {@link PageHarness.open}. */
export interface PageOpenOptions {
  id: string;
  /** IndexedDB store name; absent keeps the data in memory. */
  path?: string;
  relayUrl?: string;
  secret?: string;
  compactAfterUpdates?: number;
  peerId?: string;
  /** Also sync with the other tabs of this origin over BroadcastChannel. */
  tabs?: boolean;
  /** Subscribe to the database's events (collecting `errors` and `peersSeen`); default true. */
  events?: boolean;
}

/** What a page exposes to the tests as `window.harness`. */
export class PageHarness {
  db: Database | null = null;
  transport: Transport | null = null;
  tabTransport: Transport | null = null;
  /** Codes (or names) of the `error` events the database reported. */
  errors: string[] = [];
  /** Ids of peers the database saw connect. */
  peersSeen: string[] = [];

  async open(o: PageOpenOptions): Promise<void> {
    this.transport = o.relayUrl
      ? new RelayTransport({ url: o.relayUrl, ...(o.peerId ? { peerId: o.peerId } : {}), reconnect: { initialDelayMs: 50, maxDelayMs: 300 } })
      : null;
    this.tabTransport = o.tabs ? new BroadcastChannelTransport() : null;
    const transports = [this.transport, this.tabTransport].filter((t): t is Transport => t !== null);
    const db = await openDatabase({
      id: o.id,
      ...(o.path !== undefined ? { path: o.path } : {}),
      ...(transports.length === 1 ? { transport: transports[0]! } : transports.length > 1 ? { transport: transports } : {}),
      ...(o.secret !== undefined ? { secret: o.secret } : {}),
      ...(o.compactAfterUpdates !== undefined ? { persistence: { compactAfterUpdates: o.compactAfterUpdates } } : {}),
    });
    this.db = db;
    if (o.events === false) return;
    const events = db.events.subscribe({ capacity: 1 << 16 });
    void (async () => {
      for await (const e of events) {
        if (e.type === 'error') this.errors.push((e.error as { code?: string }).code ?? e.error.name);
        if (e.type === 'peer-connected') this.peersSeen.push(e.peerId);
      }
    })();
  }

  #db(): Database {
    if (!this.db) throw new Error('harness: open() first');
    return this.db;
  }

  put(id: string, data: Record<string, JsonValue>): void {
    this.#db().put(id, data);
  }

  /** `n` puts `${prefix}${i}`, each in its own macrotask when `spread` (so each is its own transaction). */
  async putMany(prefix: string, n: number, spread = false): Promise<void> {
    for (let i = 0; i < n; i++) {
      this.#db().put(`${prefix}${i}`, { i, by: prefix });
      if (spread && i % 10 === 9) await new Promise((r) => setTimeout(r, 0));
    }
  }

  ids(): string[] {
    return this.#db().list().map((n) => n.id);
  }

  get(id: string): Record<string, JsonValue> | undefined {
    return this.#db().get(id);
  }

  size(): number {
    return this.#db().size;
  }

  async flush(): Promise<void> {
    await this.#db().flush();
  }

  /**
   * Writes `n` nodes (`${prefix}${i}`), then (when `flush`) awaits `db.flush()`, then reloads
   * the page in the same task: nothing after the flush gets a chance to finish writing.
   */
  async writeThenReload(prefix: string, n: number, flush: boolean): Promise<void> {
    const db = this.#db();
    for (let i = 0; i < n; i++) {
      db.put(`${prefix}${i}`, { i, by: prefix, text: 'y'.repeat(1000) });
      if (i % 50 === 49) await Promise.resolve(); // a new microtask: the store gets several batches
    }
    if (flush) await db.flush();
    location.reload();
  }

  // ---- for bench/browser.ts ----------------------------------------------------------------

  /** Opens the database and returns how long `openDatabase` took, in ms. */
  async timedOpen(o: PageOpenOptions): Promise<number> {
    const t0 = performance.now();
    await this.open(o);
    return performance.now() - t0;
  }

  /** `n` puts of 3-field nodes, one transaction each, then `await flush()`: ms until on disk. */
  async timedPuts(n: number): Promise<number> {
    const db = this.#db();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) db.put(`p${i}`, { title: `node ${i}`, n: i, done: false });
    await db.flush();
    return performance.now() - t0;
  }

  /** `n` 3-field nodes in ONE transaction, flushed. */
  async bulkLoad(n: number): Promise<void> {
    const db = this.#db();
    db.doc.transact(() => {
      for (let i = 0; i < n; i++) db.put(`n${i}`, { title: `node ${i}`, n: i, done: i % 2 === 0 });
    });
    await db.flush();
  }

  /** Opens, then waits (checking every few ms) until `n` nodes arrived: ms from open to then. */
  async timedColdSync(o: PageOpenOptions, n: number, timeoutMs = 120_000): Promise<number> {
    const t0 = performance.now();
    await this.open(o);
    const db = this.#db();
    while (db.size < n) {
      if (performance.now() - t0 > timeoutMs) throw new Error(`cold sync: ${db.size} of ${n} nodes after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return performance.now() - t0;
  }

  async close(): Promise<void> {
    await this.db?.close();
    await this.transport?.disconnect();
    await this.tabTransport?.disconnect();
    this.db = null;
    this.transport = null;
    this.tabTransport = null;
  }
}

(globalThis as unknown as { harness: PageHarness }).harness = new PageHarness();
document.title = 'rhizome test page';
