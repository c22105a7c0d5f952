// Coalescing, sealed topic broadcast and the batch write API (issue 12). Counts of frames are
// exact (they follow from the protocol), never timings.
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryTransport, createTransport, generateDatabaseId } from '@rhizome/core';
import type { Connection, ConnectOptions, PeerInfo, TopicBroadcast, TopicHash, Transport } from '@rhizome/core';
import { createRelayServer } from '@rhizome/relay';
import type { RelayServer } from '@rhizome/relay';
import { openDatabase } from '@rhizome/sync';
import type { Database, DatabaseOptions } from '@rhizome/sync';
import { collectEvents, uniqueHub, until } from './sync-helpers.js';

const open: Database[] = [];
const relays: RelayServer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close().catch(() => undefined)));
  await Promise.all(relays.splice(0).map((r) => r.close()));
});

/** Opens a database without presence (no awareness traffic), so frame counts are the updates'. */
async function quietDb(options: DatabaseOptions): Promise<Database> {
  const d = await openDatabase(options);
  d.awareness.setLocalState(null);
  open.push(d);
  return d;
}

const sent = (d: Database): number => d.stats().framesSent;
const sentPairwise = (d: Database): number => d.stats().peers.reduce((n, p) => n + p.framesSent, 0);

describe('coalescing', () => {
  it('puts made within one macrotask leave as one frame per peer', async () => {
    const hub = uniqueHub();
    const id = generateDatabaseId();
    const a = await quietDb({ id, transport: { mode: 'memory', hub, peerId: 'a' } });
    const b = await quietDb({ id, transport: { mode: 'memory', hub, peerId: 'b' } });
    await Promise.all([a.whenSynced({ minPeers: 1 }), b.whenSynced({ minPeers: 1 })]);
    const before = sent(a);
    for (let i = 0; i < 100; i++) a.put(`n${i}`, { i });
    await until(b, () => b.size === 100, 'b has all 100');
    expect(sent(a) - before).toBe(1);
    // The next turn's writes are a frame of their own.
    a.put('later', { x: 1 });
    await until(b, () => b.get('later') !== undefined, 'later');
    expect(sent(a) - before).toBe(2);
  });

  it('a writer that yields after every write shares frames (at least two writes per frame) over a relay', async () => {
    const relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
    relays.push(relay);
    const id = generateDatabaseId();
    const a = await quietDb({ id, transport: { mode: 'relay', relayUrl: relay.url } });
    const b = await quietDb({ id, transport: { mode: 'relay', relayUrl: relay.url } });
    await Promise.all([a.whenSynced({ minPeers: 1 }), b.whenSynced({ minPeers: 1 })]);
    const before = sent(a);
    const writes = 200;
    for (let i = 0; i < writes; i++) {
      a.put(`w${i}`, { i });
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await until(b, () => b.size === writes, `b has all ${writes}`);
    // The first write goes alone (isolated), every later frame holds two writes or more
    // (the linger; on an unloaded machine about a millisecond's worth).
    const frames = sent(a) - before;
    expect(frames).toBeGreaterThanOrEqual(2);
    expect(frames).toBeLessThanOrEqual(1 + Math.ceil((writes - 1) / 2));
    expect(b.get(`w${writes - 1}`)).toEqual({ i: writes - 1 });
  });
});

describe('sealed topic broadcast over a relay', () => {
  it('a live update is sealed and sent once for every peer, and members do not forward it to each other', async () => {
    const relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
    relays.push(relay);
    const id = generateDatabaseId();
    const dbs = [];
    for (let i = 0; i < 3; i++) dbs.push(await quietDb({ id, transport: { mode: 'relay', relayUrl: relay.url } }));
    const [a, b, c] = dbs as [Database, Database, Database];
    await Promise.all(dbs.map((d) => d.whenSynced({ minPeers: 2 })));
    const before = dbs.map(sent);
    const pairwise = dbs.map(sentPairwise);
    const relayIn = relay.stats().framesIn;
    for (let i = 0; i < 20; i++) a.put(`n${i}`, { i, text: 'x'.repeat(i) });
    await Promise.all([b, c].map((d) => until(d, () => d.size === 20, 'all 20 nodes')));
    // A causal fence: a second write's round trip, after which anything B or C would have
    // forwarded from the first one has left (it would be flushed on their next turn).
    a.put('fence', {});
    await Promise.all([b, c].map((d) => until(d, () => d.get('fence') !== undefined, 'the fence')));
    expect(sent(a) - before[0]!).toBe(2); // one broadcast per turn, for both peers
    expect(sentPairwise(a) - pairwise[0]!).toBe(0);
    expect(relay.stats().framesIn - relayIn).toBe(2);
    for (const d of [b, c]) {
      const i = dbs.indexOf(d);
      expect(sent(d) - before[i]!).toBe(0);
      expect(d.get('n19')).toEqual({ i: 19, text: 'x'.repeat(19) });
    }
  });

  it('a peer reached both through the relay group and pairwise gets updates from the group forwarded', async () => {
    const relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
    relays.push(relay);
    const hub = uniqueHub();
    const id = generateDatabaseId();
    // a and b meet on the relay; b and c meet on a memory hub (c has no relay): b bridges.
    const a = await quietDb({ id, transport: { mode: 'relay', relayUrl: relay.url } });
    const bridge = new BothTransport([createRelayTransportFor(relay.url), new MemoryTransport({ hub, peerId: 'b' })]);
    const b = await quietDb({ id, transport: bridge });
    const c = await quietDb({ id, transport: { mode: 'memory', hub, peerId: 'c' } });
    await b.whenSynced({ minPeers: 2 });
    a.put('from-a', { v: 1 });
    await until(c, () => c.get('from-a') !== undefined, 'from-a at c');
    c.put('from-c', { v: 2 });
    await until(a, () => a.get('from-c') !== undefined, 'from-c at a');
    expect(c.get('from-a')).toEqual({ v: 1 });
    await bridge.disconnect();
  });
});

describe('a broadcast that fails', () => {
  it('falls back to pairwise catch-up: nothing is lost and the error is reported', async () => {
    const hub = uniqueHub();
    const id = generateDatabaseId();
    const failing = new GroupTransport(new MemoryTransport({ hub, peerId: 'a' }), 3);
    const a = await quietDb({ id, transport: failing });
    const peers = [await quietDb({ id, transport: { mode: 'memory', hub, peerId: 'b' } }), await quietDb({ id, transport: { mode: 'memory', hub, peerId: 'c' } })];
    await a.whenSynced({ minPeers: 2 });
    const events = collectEvents(a);
    for (let turn = 0; turn < 8; turn++) {
      a.put(`t${turn}`, { turn });
      await new Promise<void>((resolve) => setImmediate(resolve));
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    for (const p of peers) await until(p, () => p.size === 8, 'all 8 writes after the fallback');
    events.stop();
    expect(failing.broadcasts).toBe(3);
    expect(events.events.some((e) => e.type === 'error' && e.error.message.includes('broadcast broke'))).toBe(true);
    await failing.disconnect();
  });
});

describe('batch writes', () => {
  it('transact and putMany make one update (one row, one message) and publish every node', async () => {
    const hub = uniqueHub();
    const id = generateDatabaseId();
    const a = await quietDb({ id, transport: { mode: 'memory', hub, peerId: 'a' } });
    const b = await quietDb({ id, transport: { mode: 'memory', hub, peerId: 'b' } });
    await Promise.all([a.whenSynced({ minPeers: 1 }), b.whenSynced({ minPeers: 1 })]);
    let updates = 0;
    a.doc.on('update', () => updates++);
    const events = collectEvents(a);
    const result = a.transact(() => {
      a.put('x', { n: 1 });
      a.put('y', { n: 2 });
      a.delete('x');
      return 'done';
    });
    expect(result).toBe('done');
    expect(updates).toBe(1);
    a.putMany([
      ['p1', { v: 1 }],
      ['p2', { v: 2, tags: ['a'] }],
    ]);
    expect(updates).toBe(2);
    a.putMany([]);
    expect(updates).toBe(2);
    await until(b, () => b.size === 3, 'b has y, p1, p2');
    expect(b.get('p2')).toEqual({ tags: ['a'], v: 2 });
    expect(b.get('x')).toBeUndefined();
    // The delete inside the transaction removed the field its own put had set: a later put of
    // another field does not bring it back.
    a.put('x', { m: 2 });
    await until(b, () => b.get('x') !== undefined, 'x again');
    expect(b.get('x')).toEqual({ m: 2 });
    expect(a.get('x')).toEqual({ m: 2 });
    events.stop();
    const upserts = events.events.filter((e) => e.type === 'node-upsert').map((e) => (e as { id: string }).id).sort();
    expect(upserts).toEqual(['p1', 'p2', 'x', 'y']);
  });

  it('putMany validates every entry before writing any', () => {
    return (async () => {
      const d = await quietDb({ id: generateDatabaseId() });
      expect(() => d.putMany([['ok', { v: 1 }], ['', { v: 2 }]])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
      expect(() => d.putMany([['ok', { v: 1 }], ['bad', { v: Number.NaN }]])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
      expect(d.size).toBe(0);
      await d.close();
      expect(() => d.putMany([['ok', {}]])).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
      expect(() => d.transact(() => 1)).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
    })();
  });
});

// ---- transports for the tests ----------------------------------------------------------------

function createRelayTransportFor(url: string): Transport {
  return createTransport({ mode: 'relay', relayUrl: url });
}

/** Joins a topic on several transports at once and yields every Connection of all of them. */
class BothTransport implements Transport {
  readonly name = 'both';
  readonly maxMessageSize: number;
  readonly #inner: Transport[];
  constructor(inner: Transport[]) {
    this.#inner = inner;
    this.maxMessageSize = Math.min(...inner.map((t) => t.maxMessageSize));
  }
  async announce(topic: TopicHash): Promise<void> {
    await Promise.all(this.#inner.map((t) => t.announce(topic)));
  }
  async lookup(topic: TopicHash): Promise<PeerInfo[]> {
    return (await Promise.all(this.#inner.map((t) => t.lookup(topic)))).flat();
  }
  async connect(topic: TopicHash, options?: ConnectOptions): Promise<AsyncIterable<Connection>> {
    const iterables = await Promise.all(this.#inner.map((t) => t.connect(topic, options)));
    return merge(iterables);
  }
  async disconnect(): Promise<void> {
    await Promise.all(this.#inner.map((t) => t.disconnect()));
  }
}

async function* merge<T>(iterables: AsyncIterable<T>[]): AsyncIterable<T> {
  const iterators = iterables.map((it) => it[Symbol.asyncIterator]());
  const next = iterators.map((it, i) => it.next().then((r) => ({ r, i })));
  let live = iterators.length;
  while (live > 0) {
    const { r, i } = await Promise.race(next.filter(Boolean));
    if (r.done) {
      next[i] = new Promise(() => undefined);
      live--;
      continue;
    }
    next[i] = iterators[i]!.next().then((res) => ({ r: res, i }));
    yield r.value;
  }
}

/**
 * Memory connections that share a topic broadcast which delivers by sending on each connection,
 * and breaks (rejects) after `workingSends` broadcasts.
 */
class GroupTransport implements Transport {
  readonly name = 'group';
  readonly maxMessageSize: number;
  broadcasts = 0;
  readonly #inner: MemoryTransport;
  readonly #workingSends: number;
  constructor(inner: MemoryTransport, workingSends: number) {
    this.#inner = inner;
    this.#workingSends = workingSends;
    this.maxMessageSize = inner.maxMessageSize;
  }
  announce(topic: TopicHash): Promise<void> {
    return this.#inner.announce(topic);
  }
  lookup(topic: TopicHash): Promise<PeerInfo[]> {
    return this.#inner.lookup(topic);
  }
  async connect(topic: TopicHash, options?: ConnectOptions): Promise<AsyncIterable<Connection>> {
    const members = new Set<Connection>();
    const self = this;
    const channel: TopicBroadcast = {
      maxMessageSize: this.maxMessageSize,
      get closed() {
        return false;
      },
      async send(data: Uint8Array): Promise<void> {
        if (self.broadcasts >= self.#workingSends) throw new Error('broadcast broke');
        self.broadcasts++;
        for (const m of members) if (!m.closed) await m.send(data);
      },
    };
    const inner = await this.#inner.connect(topic, options);
    return (async function* () {
      for await (const conn of inner) {
        members.add(conn);
        yield new Proxy(conn, {
          get(target, prop) {
            if (prop === 'broadcast') return channel;
            const value = Reflect.get(target, prop, target) as unknown;
            return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
          },
        });
      }
    })();
  }
  disconnect(): Promise<void> {
    return this.#inner.disconnect();
  }
}
