import { describe, expect, it } from 'vitest';
import { deriveTopic } from '../topic.js';
import type { Connection, Transport } from '../types.js';

/**
 * What a transport implementation provides to {@link runTransportContract}: a way to make
 * transports that can meet each other (same hub, same relay, same DHT), and a teardown for
 * whatever they share.
 */
export interface TransportContractHarness {
  /** A new transport that can reach every other transport made by this harness. */
  createTransport(): Promise<Transport>;
  /** Stops shared infrastructure (relay server, bootstrap node); transports are already disconnected. */
  close(): Promise<void>;
}

/** Options of {@link runTransportContract}. */
export interface TransportContractOptions {
  /** False for transports that never connect peers (the disabled transport). Default true. */
  connects?: boolean;
  /** Bound on each wait in the suite, in ms. Default 15000. */
  timeoutMs?: number;
  /** True when the transport's Connections offer a topic broadcast (`Connection.broadcast`). Default false. */
  broadcast?: boolean;
}

let topicCounter = 0;
/** A topic no other test in this process uses. */
function freshTopic(): Uint8Array {
  return deriveTopic(`contract-${process.pid}-${Date.now()}-${topicCounter++}`);
}

/** Resolves with the promise's value, or rejects after `ms` with a message naming `what`. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads the next `n` connections from a connect() iterable. */
async function take(iterable: AsyncIterable<Connection>, n: number): Promise<Connection[]> {
  const out: Connection[] = [];
  if (n === 0) return out;
  for await (const c of iterable) {
    out.push(c);
    if (out.length === n) break;
  }
  return out;
}

/** Deterministic bytes of a given length (a counter pattern), so corruption shows. */
function pattern(length: number, seed: number): Uint8Array {
  const b = new Uint8Array(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/**
 * The transport contract, written once and run for every implementation (memory, disabled,
 * relay, DHT). Call it at the top level of a vitest file.
 *
 * @example
 * ```ts
 * runTransportContract('memory', async () => {
 *   const hub = new MemoryHub();
 *   return { createTransport: async () => new MemoryTransport({ hub }), close: async () => {} };
 * });
 * ```
 */
export function runTransportContract(
  name: string,
  setup: () => Promise<TransportContractHarness>,
  options: TransportContractOptions = {},
): void {
  const connects = options.connects ?? true;
  const wait = options.timeoutMs ?? 15_000;
  const broadcasts = options.broadcast ?? false;

  /** Runs `body` with a fresh harness and transports, disconnecting everything afterwards. */
  async function withTransports(n: number, body: (ts: Transport[]) => Promise<void>): Promise<void> {
    const harness = await setup();
    const ts: Transport[] = [];
    try {
      for (let i = 0; i < n; i++) ts.push(await harness.createTransport());
      await body(ts);
    } finally {
      await Promise.all(ts.map((t) => t.disconnect()));
      await harness.close();
    }
  }

  describe(`transport contract: ${name}`, () => {
    it('rejects topics that are not 32 bytes with ERR_INVALID_TOPIC', async () => {
      await withTransports(1, async ([t]) => {
        for (const bad of [new Uint8Array(31), new Uint8Array(33)]) {
          await expect(t!.announce(bad)).rejects.toMatchObject({ code: 'ERR_INVALID_TOPIC' });
          await expect(t!.lookup(bad)).rejects.toMatchObject({ code: 'ERR_INVALID_TOPIC' });
          await expect(t!.connect(bad)).rejects.toMatchObject({ code: 'ERR_INVALID_TOPIC' });
        }
      });
    });

    it('disconnect is idempotent and connect after it fails with ERR_TRANSPORT_CLOSED', async () => {
      await withTransports(1, async ([t]) => {
        await t!.disconnect();
        await t!.disconnect();
        await expect(t!.connect(freshTopic())).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CLOSED' });
        await expect(t!.announce(freshTopic())).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CLOSED' });
      });
    });

    it('an aborted connect ends its iterable', async () => {
      await withTransports(1, async ([t]) => {
        const ac = new AbortController();
        const conns = await t!.connect(freshTopic(), { signal: ac.signal });
        const done = take(conns, Number.POSITIVE_INFINITY);
        ac.abort();
        expect(await within(wait, 'the iterable to end after abort', done)).toEqual([]);
        const pre = new AbortController();
        pre.abort();
        await expect(t!.connect(freshTopic(), { signal: pre.signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
      });
    });

    it('a connect aborted or disconnected before it resolves leaves the topic', async () => {
      await withTransports(1, async ([t]) => {
        const topic = freshTopic();
        const ac = new AbortController();
        const pending = t!.connect(topic, { signal: ac.signal });
        ac.abort();
        // Either outcome is fine: a rejection with ERR_ABORTED, or an iterable that ends.
        const outcome = await pending.then(
          (conns) => within(wait, 'the iterable to end after an early abort', take(conns, Number.POSITIVE_INFINITY)),
          (error: unknown) => error,
        );
        if (Array.isArray(outcome)) expect(outcome).toEqual([]);
        else expect(outcome).toMatchObject({ code: 'ERR_ABORTED' });
        // The topic was left: joining it again works.
        const again = new AbortController();
        await t!.connect(topic, { signal: again.signal });
        again.abort();
        // Disconnect while a connect is pending: it rejects with ERR_TRANSPORT_CLOSED or its iterable ends.
        const late = t!.connect(freshTopic());
        const disconnected = t!.disconnect();
        const lateOutcome = await late.then(
          (conns) => within(wait, 'the iterable to end after disconnect', take(conns, Number.POSITIVE_INFINITY)),
          (error: unknown) => error,
        );
        await disconnected;
        if (Array.isArray(lateOutcome)) expect(lateOutcome).toEqual([]);
        else expect(lateOutcome).toMatchObject({ code: 'ERR_TRANSPORT_CLOSED' });
      });
    });

    it('disconnect ends every connect iterable', async () => {
      await withTransports(1, async ([t]) => {
        const conns = await t!.connect(freshTopic());
        const done = take(conns, Number.POSITIVE_INFINITY);
        await t!.disconnect();
        expect(await within(wait, 'the iterable to end after disconnect', done)).toEqual([]);
      });
    });

    if (!connects) {
      it('finds nobody and yields no connection', async () => {
        await withTransports(2, async ([a, b]) => {
          const topic = freshTopic();
          await a!.announce(topic);
          await b!.announce(topic);
          expect(await a!.lookup(topic)).toEqual([]);
        });
      });
      return;
    }

    it('lookup finds a peer that announced the topic, not itself', async () => {
      await withTransports(2, async ([a, b]) => {
        const topic = freshTopic();
        await a!.announce(topic);
        // Discovery may be eventually consistent (DHT): poll, bounded in time and count.
        const deadline = Date.now() + wait;
        let found = await b!.lookup(topic);
        for (let i = 0; found.length === 0 && Date.now() < deadline && i < 100; i++) {
          await new Promise((r) => setTimeout(r, 100));
          found = await b!.lookup(topic);
        }
        expect(found.length).toBe(1);
        expect(typeof found[0]!.peerId).toBe('string');
        expect(await a!.lookup(topic)).toEqual([]);
      });
    });

    it('two peers connecting at once get exactly one connection each, to each other', async () => {
      await withTransports(2, async ([a, b]) => {
        const topic = freshTopic();
        const [ia, ib] = await Promise.all([a!.connect(topic), b!.connect(topic)]);
        const [[ca], [cb]] = await within(wait, 'one connection on each side', Promise.all([take(ia, 1), take(ib, 1)]));
        expect(ca!.topic).toEqual(topic);
        expect(cb!.topic).toEqual(topic);
        // Each side names the other; both sides agree on the pair.
        expect(ca!.peerId).not.toBe(cb!.peerId);
        // No second connection for the same pair shows up: a ping-pong round trip on the
        // first one completes, and by then a duplicate would have been yielded.
        await ca!.send(new Uint8Array([1]));
        expect(await within(wait, 'ping', cb!.receive())).toEqual(new Uint8Array([1]));
        await cb!.send(new Uint8Array([2]));
        expect(await within(wait, 'pong', ca!.receive())).toEqual(new Uint8Array([2]));
        // Watch both iterables for a bounded window: a duplicate connection must not appear.
        const settle = new Promise<string>((r) => setTimeout(() => r('none'), 500));
        const extra = (it: AsyncIterable<Connection>): Promise<string> =>
          take(it, 1).then((c) => (c.length > 0 ? `duplicate connection to ${c[0]!.peerId}` : 'none'));
        expect(await Promise.race([extra(ia), extra(ib), settle])).toBe('none');
      });
    });

    it('three peers: each gets one connection to each other peer', async () => {
      await withTransports(3, async (ts) => {
        const topic = freshTopic();
        const iters = await Promise.all(ts.map((t) => t.connect(topic)));
        const conns = await within(wait, 'two connections per peer', Promise.all(iters.map((it) => take(it, 2))));
        for (const list of conns) {
          expect(new Set(list.map((c) => c.peerId)).size).toBe(2);
        }
      });
    });

    it(broadcasts ? 'a topic broadcast reaches every other peer once, in order with unicast' : 'connections offer no topic broadcast', async () => {
      await withTransports(3, async (ts) => {
        const topic = freshTopic();
        const iters = await Promise.all(ts.map((t) => t.connect(topic)));
        const conns = await within(wait, 'two connections per peer', Promise.all(iters.map((it) => take(it, 2))));
        if (!broadcasts) {
          for (const c of conns.flat()) expect(c.broadcast).toBeUndefined();
          return;
        }
        const [mine, seen1, seen2] = conns as [Connection[], Connection[], Connection[]];
        const aId = seen1.map((c) => c.peerId).find((id) => seen2.some((c) => c.peerId === id))!;
        const id1 = seen2.find((c) => c.peerId !== aId)!.peerId;
        const id2 = seen1.find((c) => c.peerId !== aId)!.peerId;
        const toward = [mine.find((c) => c.peerId === id1)!, mine.find((c) => c.peerId === id2)!];
        const fromA = [seen1.find((c) => c.peerId === aId)!, seen2.find((c) => c.peerId === aId)!];
        const channel = toward[0]!.broadcast;
        expect(channel).toBeDefined();
        // One object per topic and session: every connection of the topic carries the same one.
        expect(toward[1]!.broadcast).toBe(channel);
        expect(channel!.closed).toBe(false);
        // Interleave unicast to each peer with broadcasts: each peer sees its own order.
        const want: string[][] = [[], []];
        for (let i = 0; i < 20; i++) {
          await toward[i % 2]!.send(new TextEncoder().encode(`u${i}`));
          want[i % 2]!.push(`u${i}`);
          await channel!.send(new TextEncoder().encode(`b${i}`));
          want[0]!.push(`b${i}`);
          want[1]!.push(`b${i}`);
        }
        for (let p = 0; p < 2; p++) {
          const got: string[] = [];
          while (got.length < want[p]!.length) {
            const m = await within(wait, 'broadcast and unicast messages', fromA[p]!.receive());
            if (m === null) break;
            got.push(new TextDecoder().decode(m));
          }
          expect(got).toEqual(want[p]);
        }
        await expect(channel!.send(new Uint8Array(channel!.maxMessageSize + 1))).rejects.toMatchObject({ code: 'ERR_FRAME_TOO_LARGE' });
        // A's own broadcasts never come back to A: the first thing A reads is what peer 1 sent
        // after it had received every broadcast.
        await fromA[0]!.send(new TextEncoder().encode('end'));
        const first = await within(wait, 'the end marker', toward[0]!.receive());
        expect(new TextDecoder().decode(first!)).toBe('end');
      });
    });

    it('delivers messages in order with boundaries kept (empty to 1 MiB)', async () => {
      await withTransports(2, async ([a, b]) => {
        const topic = freshTopic();
        const [ia, ib] = await Promise.all([a!.connect(topic), b!.connect(topic)]);
        const [[ca], [cb]] = await within(wait, 'connections', Promise.all([take(ia, 1), take(ib, 1)]));
        const big = Math.min(1024 * 1024, a!.maxMessageSize);
        const sizes = [0, 1, 2, 100, 1000, 65_536, big, 0, 3, big - 1];
        for (let i = 0; i < 200; i++) sizes.push((i * 7919) % 4096);
        const sent = sizes.map((n, i) => pattern(n, i));
        const reading = (async () => {
          const got: Uint8Array[] = [];
          while (got.length < sent.length) {
            const m = await cb!.receive();
            if (m === null) break;
            got.push(m);
          }
          return got;
        })();
        for (const m of sent) await ca!.send(m);
        const got = await within(wait * 2, 'all messages', reading);
        expect(got.length).toBe(sent.length);
        for (let i = 0; i < sent.length; i++) {
          expect(got[i]!.length, `message ${i} length`).toBe(sent[i]!.length);
          expect(Buffer.from(got[i]!).equals(Buffer.from(sent[i]!)), `message ${i} bytes`).toBe(true);
        }
      });
    });

    it('a message above maxMessageSize is refused with ERR_FRAME_TOO_LARGE', async () => {
      await withTransports(2, async ([a, b]) => {
        const topic = freshTopic();
        const [ia, ib] = await Promise.all([a!.connect(topic), b!.connect(topic)]);
        const [[ca], [cb]] = await within(wait, 'connections', Promise.all([take(ia, 1), take(ib, 1)]));
        await expect(ca!.send(new Uint8Array(a!.maxMessageSize + 1))).rejects.toMatchObject({ code: 'ERR_FRAME_TOO_LARGE' });
        // The connection is still usable afterwards.
        await ca!.send(new Uint8Array([9]));
        expect(await within(wait, 'a message after the refused one', cb!.receive())).toEqual(new Uint8Array([9]));
      });
    });

    it('a close on either side is seen by the other, after the messages sent before it', async () => {
      await withTransports(2, async ([a, b]) => {
        const topic = freshTopic();
        const [ia, ib] = await Promise.all([a!.connect(topic), b!.connect(topic)]);
        const [[ca], [cb]] = await within(wait, 'connections', Promise.all([take(ia, 1), take(ib, 1)]));
        await ca!.send(new Uint8Array([7]));
        await ca!.close();
        await ca!.close();
        expect(ca!.closed).toBe(true);
        expect(await within(wait, 'the last message', cb!.receive())).toEqual(new Uint8Array([7]));
        expect(await within(wait, 'the close', cb!.receive())).toBeNull();
        expect(cb!.closed).toBe(true);
        await expect(ca!.send(new Uint8Array([1]))).rejects.toMatchObject({ code: 'ERR_CONNECTION_CLOSED' });
        await expect(cb!.send(new Uint8Array([1]))).rejects.toMatchObject({ code: 'ERR_CONNECTION_CLOSED' });
      });
    });

    it('async iteration over a connection ends when the other side closes', async () => {
      await withTransports(2, async ([a, b]) => {
        const topic = freshTopic();
        const [ia, ib] = await Promise.all([a!.connect(topic), b!.connect(topic)]);
        const [[ca], [cb]] = await within(wait, 'connections', Promise.all([take(ia, 1), take(ib, 1)]));
        const received = (async () => {
          const out: number[] = [];
          for await (const m of cb!) out.push(m[0]!);
          return out;
        })();
        for (let i = 0; i < 10; i++) await ca!.send(new Uint8Array([i]));
        await cb!.send(new Uint8Array([42]));
        expect(await within(wait, 'reply', ca!.receive())).toEqual(new Uint8Array([42]));
        await ca!.close();
        expect(await within(wait, 'iteration end', received)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      });
    });

    it('disconnect closes the connections on the other side and releases the topic', async () => {
      await withTransports(2, async ([a, b]) => {
        const topic = freshTopic();
        const [ia, ib] = await Promise.all([a!.connect(topic), b!.connect(topic)]);
        const [[ca], [cb]] = await within(wait, 'connections', Promise.all([take(ia, 1), take(ib, 1)]));
        await a!.disconnect();
        expect(ca!.closed).toBe(true);
        expect(await within(wait, 'the remote close', cb!.receive())).toBeNull();
        await expect(a!.connect(topic)).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CLOSED' });
      });
    });

    it('aborting a connect closes that topic\'s connections; other topics stay up', async () => {
      await withTransports(2, async ([a, b]) => {
        const t1 = freshTopic();
        const t2 = freshTopic();
        const ac = new AbortController();
        const [ia1, ib1] = await Promise.all([a!.connect(t1, { signal: ac.signal }), b!.connect(t1)]);
        const [ia2, ib2] = await Promise.all([a!.connect(t2), b!.connect(t2)]);
        const [[c1a], [c1b], [c2a], [c2b]] = await within(
          wait,
          'connections on both topics',
          Promise.all([take(ia1, 1), take(ib1, 1), take(ia2, 1), take(ib2, 1)]),
        );
        ac.abort();
        expect(await within(wait, 'the aborted topic to close remotely', c1b!.receive())).toBeNull();
        expect(c1a!.closed).toBe(true);
        await c2a!.send(new Uint8Array([5]));
        expect(await within(wait, 'a message on the other topic', c2b!.receive())).toEqual(new Uint8Array([5]));
      });
    });
  });
}
