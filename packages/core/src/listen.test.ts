import { describe, expect, it } from 'vitest';
import { within } from './testing/index.js';
import { MemoryHub, MemoryTransport } from './memory.js';
import { deriveTopic } from './topic.js';
import type { Connection } from './types.js';

async function first(it: AsyncIterable<Connection>): Promise<Connection> {
  for await (const c of it) return c;
  throw new Error('iterable ended without a connection');
}

async function pair(name: string): Promise<{ a: MemoryTransport; b: MemoryTransport; ca: Connection; cb: Connection }> {
  const hub = new MemoryHub();
  const a = new MemoryTransport({ hub });
  const b = new MemoryTransport({ hub });
  const topic = deriveTopic(name);
  const [ca, cb] = await Promise.all([a.connect(topic).then(first), b.connect(topic).then(first)]);
  return { a, b, ca, cb };
}

describe('Connection.listen (QueuedConnection)', () => {
  it('hands over what was queued first, then each message as delivered, in order, then one end', async () => {
    const { a, b, ca, cb } = await pair('listen-order');
    await ca.send(new Uint8Array([1]));
    await ca.send(new Uint8Array([2]));
    // Delivered but unread: both sit in the queue until the listener comes.
    await within(2000, 'queued', (async () => {
      while ((cb as unknown as { buffered: number }).buffered < 2) await new Promise((r) => setImmediate(r));
    })());
    const got: number[] = [];
    const ends: Array<Error | null> = [];
    let ended!: () => void;
    const end = new Promise<void>((r) => (ended = r));
    cb.listen!({
      onMessage: (m) => got.push(m[0]!),
      onEnd: (e) => {
        ends.push(e);
        ended();
      },
    });
    expect(got).toEqual([1, 2]); // synchronously, inside listen()
    expect((cb as unknown as { buffered: number }).buffered).toBe(0);
    await ca.send(new Uint8Array([3]));
    await ca.close();
    await within(2000, 'end', end);
    expect(got).toEqual([1, 2, 3]);
    expect(ends).toEqual([null]);
    await Promise.all([a.disconnect(), b.disconnect()]);
  });

  it('a connection closed before listen() ends the listener at once; a second listener is refused', async () => {
    const { a, b, ca, cb } = await pair('listen-closed');
    await ca.send(new Uint8Array([7]));
    await ca.close();
    await within(2000, 'closed', (async () => {
      while (!cb.closed) await new Promise((r) => setImmediate(r));
    })());
    const events: string[] = [];
    cb.listen!({ onMessage: (m) => events.push(`m${m[0]}`), onEnd: (e) => events.push(e === null ? 'end' : 'error') });
    expect(events).toEqual(['m7', 'end']);
    expect(() => cb.listen!({ onMessage: () => undefined, onEnd: () => undefined })).toThrow(/already has a listener/);
    await Promise.all([a.disconnect(), b.disconnect()]);
  });

  it('a pulling reader still works: the queue is made on first use', async () => {
    const { a, b, ca, cb } = await pair('listen-pull');
    await ca.send(new Uint8Array([9]));
    expect(await within(2000, 'receive', cb.receive())).toEqual(new Uint8Array([9]));
    await ca.close();
    expect(await within(2000, 'null', cb.receive())).toBeNull();
    await Promise.all([a.disconnect(), b.disconnect()]);
  });

  it('a read after listen() (not allowed) gets no message and ends with the connection; the listener is kept', async () => {
    // The queue and the listener share one field of the Connection: a late read must not take
    // the listener's place.
    const { a, b, ca, cb } = await pair('listen-late-read');
    const got: number[] = [];
    let ended!: () => void;
    const end = new Promise<void>((r) => (ended = r));
    cb.listen!({ onMessage: (m) => got.push(m[0]!), onEnd: () => ended() });
    const late = cb.receive();
    await ca.send(new Uint8Array([4]));
    await ca.close();
    await within(2000, 'end', end);
    expect(got).toEqual([4]);
    expect(await within(2000, 'late read', late)).toBeNull();
    expect(await within(2000, 'read after the close', cb.receive())).toBeNull();
    expect((cb as unknown as { buffered: number }).buffered).toBe(0);
    await Promise.all([a.disconnect(), b.disconnect()]);
  });
});
