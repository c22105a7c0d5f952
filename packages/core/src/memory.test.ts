import { describe, expect, it } from 'vitest';
import { runTransportContract, within } from './testing/index.js';
import { MemoryHub, MemoryTransport } from './memory.js';
import { DisabledTransport } from './disabled.js';
import { deriveTopic } from './topic.js';
import type { Connection } from './types.js';

runTransportContract('memory', async () => {
  const hub = new MemoryHub('contract');
  return { createTransport: async () => new MemoryTransport({ hub }), close: async () => {} };
});

runTransportContract('disabled', async () => ({ createTransport: async () => new DisabledTransport(), close: async () => {} }), {
  connects: false,
});

async function first(it: AsyncIterable<Connection>): Promise<Connection> {
  for await (const c of it) return c;
  throw new Error('iterable ended without a connection');
}

describe('MemoryTransport', () => {
  it('delivers asynchronously, never inside send()', async () => {
    const hub = new MemoryHub();
    const a = new MemoryTransport({ hub });
    const b = new MemoryTransport({ hub });
    const topic = deriveTopic('async');
    const [ca, cb] = await Promise.all([a.connect(topic).then(first), b.connect(topic).then(first)]);
    let received = false;
    void cb.receive().then(() => (received = true));
    await ca.send(new Uint8Array([1]));
    await Promise.resolve();
    expect(received).toBe(false);
    await within(1000, 'delivery', new Promise((r) => setImmediate(r)).then(() => new Promise((r) => setImmediate(r))));
    expect(received).toBe(true);
    await Promise.all([a.disconnect(), b.disconnect()]);
  });

  it('copies messages: mutating the sent buffer does not change what arrives', async () => {
    const hub = new MemoryHub();
    const a = new MemoryTransport({ hub });
    const b = new MemoryTransport({ hub });
    const topic = deriveTopic('copy');
    const [ca, cb] = await Promise.all([a.connect(topic).then(first), b.connect(topic).then(first)]);
    const buf = new Uint8Array([1, 2, 3]);
    await ca.send(buf);
    buf[0] = 99;
    expect(await cb.receive()).toEqual(new Uint8Array([1, 2, 3]));
    await Promise.all([a.disconnect(), b.disconnect()]);
  });

  it('applies backpressure: a sender to a reader that never reads stalls at the high-water mark', async () => {
    const hub = new MemoryHub();
    const a = new MemoryTransport({ hub, highWaterMark: 8 });
    const b = new MemoryTransport({ hub, highWaterMark: 8 });
    const topic = deriveTopic('backpressure');
    const [ca, cb] = await Promise.all([a.connect(topic).then(first), b.connect(topic).then(first)]);
    let sent = 0;
    const sender = (async () => {
      for (let i = 0; i < 100; i++) {
        await ca.send(new Uint8Array([i]));
        sent++;
      }
    })();
    // Give the sender many turns of the event loop; it must stop near the mark.
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    expect(sent).toBeLessThanOrEqual(17);
    // Reading releases it.
    for (let i = 0; i < 100; i++) expect(await cb.receive()).toEqual(new Uint8Array([i]));
    await within(5000, 'the sender to finish', sender);
    expect(sent).toBe(100);
    await Promise.all([a.disconnect(), b.disconnect()]);
  });

  it('named hubs: transports created with the same name meet; a peer id is unique per hub', async () => {
    const a = new MemoryTransport({ hub: 'named-test', peerId: 'p1' });
    expect(() => new MemoryTransport({ hub: 'named-test', peerId: 'p1' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: 'peerId' }));
    const b = new MemoryTransport({ hub: 'named-test', peerId: 'p2' });
    const topic = deriveTopic('named');
    const [ca, cb] = await Promise.all([a.connect(topic).then(first), b.connect(topic).then(first)]);
    expect(ca.peerId).toBe('p2');
    expect(cb.peerId).toBe('p1');
    expect(ca.transport).toBe('memory');
    await Promise.all([a.disconnect(), b.disconnect()]);
    // Once every member left, the name can be reused by a new peer with the same id.
    const again = new MemoryTransport({ hub: 'named-test', peerId: 'p1' });
    await again.disconnect();
  });

  it('joining the same topic twice on one transport is a typed error', async () => {
    const t = new MemoryTransport({ hub: new MemoryHub() });
    const topic = deriveTopic('twice');
    await t.connect(topic);
    await expect(t.connect(topic)).rejects.toMatchObject({ code: 'ERR_TOPIC_ALREADY_JOINED' });
    await t.disconnect();
  });
});
