// Every session's meter row (packages/sync/src/meter-rows.ts: 96 B of the process's typed arrays
// per session) comes back however the session ends: its database closed (awaited or not), its
// peer gone, a standby path, the database meeting itself through two of its transports, a
// transport error, and a connection that never reports its end — the database's close then ends
// the session itself once CLOSE_DRAIN_MS has passed, instead of leaving its row taken until the
// process exits.
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryTransport, generateDatabaseId } from '@rhizome/core';
import type { Connection, ConnectOptions, PeerInfo, TopicHash, Transport } from '@rhizome/core';
import { CLOSE_DRAIN_MS, openDatabase, type Database } from '@rhizome/sync';
import { meterRowStats } from '../packages/sync/src/meter-rows.js';
import { uniqueHub, until } from './sync-helpers.js';
import { InboxConnection } from './faulty-link.js';

const WAIT = 20_000;
const open: Database[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.close({ flushTimeoutMs: 0 }).catch(() => undefined)));
});

async function db(id: string, transport: NonNullable<Parameters<typeof openDatabase>[0]['transport']>): Promise<Database> {
  const d = await openDatabase({ id, transport });
  open.push(d);
  return d;
}

/** Polls `check` every 20 ms (row counts raise no event); fails after `timeoutMs`. */
async function poll(check: () => boolean, what: string, timeoutMs = WAIT): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (rows ${JSON.stringify(meterRowStats())})`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const live = (): number => meterRowStats().live;
const synced = (d: Database, peers: number): boolean => d.stats().peers.length === peers && d.stats().peers.every((p) => p.synced);

/**
 * A memory connection the test can break: {@link fail} ends it with an error (as a transport
 * whose reader fell behind does), and a {@link stuck} one never reports its end, whatever closes.
 */
class EdgeConnection extends InboxConnection {
  stuck = false;

  constructor(inner: Connection) {
    super(inner);
    void (async () => {
      for await (const frame of inner) this.inbox.push(frame);
      if (!this.stuck) this.inbox.end();
    })();
  }

  fail(error: Error): void {
    this.inbox.fail(error);
    void this.inner.close();
  }
}

/** A memory transport whose connections are {@link EdgeConnection}s. */
class EdgeTransport implements Transport {
  readonly name = 'memory';
  readonly connections: EdgeConnection[] = [];
  stuck = false;
  readonly #inner: MemoryTransport;
  constructor(inner: MemoryTransport) {
    this.#inner = inner;
  }
  get maxMessageSize(): number {
    return this.#inner.maxMessageSize;
  }
  announce(topic: TopicHash): Promise<void> {
    return this.#inner.announce(topic);
  }
  lookup(topic: TopicHash): Promise<PeerInfo[]> {
    return this.#inner.lookup(topic);
  }
  async connect(topic: TopicHash, options?: ConnectOptions): Promise<AsyncIterable<Connection>> {
    const inner = await this.#inner.connect(topic, options);
    const connections = this.connections;
    const stuck = (): boolean => this.stuck;
    return (async function* () {
      for await (const conn of inner) {
        const edge = new EdgeConnection(conn);
        edge.stuck = stuck();
        connections.push(edge);
        yield edge;
      }
    })();
  }
  disconnect(): Promise<void> {
    return this.#inner.disconnect();
  }
}

describe('meter rows come back however a session ends', () => {
  it('database closed (awaited) and its peer gone', async () => {
    const base = live();
    const hub = uniqueHub('rows-close');
    const id = generateDatabaseId();
    const a = await db(id, { mode: 'memory', hub });
    const b = await db(id, { mode: 'memory', hub });
    await until(a, () => synced(a, 1) && synced(b, 1), 'a and b synced', WAIT);
    expect(live()).toBe(base + 2);
    await a.close();
    // a's row at once; b's when it sees a gone.
    await poll(() => live() === base, 'both rows back');
    expect(b.stats().peers).toEqual([]);
  });

  it('databases closed without awaiting', async () => {
    const base = live();
    const hub = uniqueHub('rows-noawait');
    const id = generateDatabaseId();
    const dbs = [await db(id, { mode: 'memory', hub }), await db(id, { mode: 'memory', hub }), await db(id, { mode: 'memory', hub })];
    await poll(() => dbs.every((d) => synced(d, 2)), 'three synced');
    expect(live()).toBe(base + 6);
    for (const d of dbs) void d.close();
    await poll(() => live() === base, 'all six rows back');
  });

  it('a standby path (two transports reach one replica), then the peer gone', async () => {
    const base = live();
    const [h1, h2] = [uniqueHub('rows-standby-1'), uniqueHub('rows-standby-2')];
    const id = generateDatabaseId();
    const a = await db(id, [{ mode: 'memory', hub: h1 }, { mode: 'memory', hub: h2 }]);
    const b = await db(id, [{ mode: 'memory', hub: h1 }, { mode: 'memory', hub: h2 }]);
    await until(a, () => synced(a, 1) && synced(b, 1), 'a and b synced', WAIT);
    // One session per replica on each side, plus its standby.
    await poll(() => live() === base + 4, 'four sessions (two standby)');
    await b.close();
    await poll(() => live() === base, 'standby rows back too');
  });

  it('the database meeting itself through two of its transports', async () => {
    const base = live();
    const hub = uniqueHub('rows-loop');
    const id = generateDatabaseId();
    const a = await db(id, [{ mode: 'memory', hub, peerId: 'loop-1' }, { mode: 'memory', hub, peerId: 'loop-2' }]);
    const b = await db(id, { mode: 'memory', hub });
    await until(a, () => synced(a, 1) && synced(b, 1), 'a and b synced', WAIT);
    expect(a.stats().peers.map((p) => p.replicaId)).toEqual([b.replicaId]);
    await Promise.all([a.close(), b.close()]);
    await poll(() => live() === base, 'all rows back');
  });

  it('a transport error on the connection', async () => {
    const base = live();
    const hub = uniqueHub('rows-error');
    const id = generateDatabaseId();
    const edge = new EdgeTransport(new MemoryTransport({ hub }));
    const a = await db(id, edge);
    const b = await db(id, { mode: 'memory', hub });
    await until(a, () => synced(a, 1) && synced(b, 1), 'a and b synced', WAIT);
    expect(live()).toBe(base + 2);
    edge.connections[0]!.fail(Object.assign(new Error('reader fell behind'), { code: 'ERR_SLOW_CONSUMER' }));
    await poll(() => live() === base, 'both rows back after the error');
    await edge.disconnect();
  });

  it('a connection that never reports its end: the database close ends the session itself', async () => {
    const base = live();
    const hub = uniqueHub('rows-stuck');
    const id = generateDatabaseId();
    const edge = new EdgeTransport(new MemoryTransport({ hub }));
    edge.stuck = true;
    const a = await db(id, edge);
    const b = await db(id, { mode: 'memory', hub });
    await until(a, () => synced(a, 1) && synced(b, 1), 'a and b synced', WAIT);
    expect(live()).toBe(base + 2);
    const started = Date.now();
    await a.close({ flushTimeoutMs: 0 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(CLOSE_DRAIN_MS - 50); // it did wait for the end
    expect(a.stats().peers).toEqual([]);
    await poll(() => live() === base, 'both rows back');
    await edge.disconnect();
  });
});
