import { describe, expect, it } from 'vitest';
import { SyncBroadcaster } from './broadcaster.js';

type Ev = { type: 'n'; i: number };

describe('SyncBroadcaster', () => {
  it('delivers every event to every subscriber, in order', async () => {
    const b = new SyncBroadcaster<Ev>();
    const subs = Array.from({ length: 10 }, () => b.subscribe());
    for (let i = 0; i < 100; i++) expect(b.publish({ type: 'n', i })).toBe(10);
    for (const s of subs) {
      for (let i = 0; i < 100; i++) expect(await s.next()).toEqual({ type: 'n', i });
    }
  });

  it('publish returns 0 with no subscribers and after close', () => {
    const b = new SyncBroadcaster<Ev>();
    expect(b.publish({ type: 'n', i: 0 })).toBe(0);
    b.subscribe();
    b.close();
    expect(b.publish({ type: 'n', i: 1 })).toBe(0);
  });

  it('unsubscribe stops delivery and ends a pending read', async () => {
    const b = new SyncBroadcaster<Ev>();
    const s = b.subscribe();
    const pending = s.next();
    s.unsubscribe();
    expect(await pending).toBeNull();
    expect(b.publish({ type: 'n', i: 0 })).toBe(0);
    expect(b.subscriberCount).toBe(0);
    s.unsubscribe();
  });

  it('breaking out of for-await unsubscribes', async () => {
    const b = new SyncBroadcaster<Ev>();
    const s = b.subscribe();
    b.publish({ type: 'n', i: 0 });
    for await (const e of s) {
      expect(e).toEqual({ type: 'n', i: 0 });
      break;
    }
    expect(b.subscriberCount).toBe(0);
  });

  it('a stalled subscriber gets lagged then the newest events, without slowing others (100k events)', async () => {
    const b = new SyncBroadcaster<Ev>();
    const stalled = b.subscribe({ capacity: 1024 });
    const fast = b.subscribe({ capacity: 16 });
    let fastSeen = 0;
    let fastLastI = -1;
    const consumer = (async () => {
      for await (const e of fast) {
        if (e.type === 'lagged') throw new Error('the fast subscriber should never lag');
        expect(e.i).toBe(fastLastI + 1);
        fastLastI = e.i;
        if (++fastSeen === 100_000) return;
      }
    })();
    for (let i = 0; i < 100_000; i++) {
      expect(b.publish({ type: 'n', i })).toBe(2);
      // Let the fast consumer run every few events, as an event loop would.
      if (i % 8 === 7) await new Promise((r) => setImmediate(r));
    }
    await consumer;
    expect(fastSeen).toBe(100_000);
    // The stalled one lost the oldest events: lagged first, then exactly the newest 1024.
    expect(await stalled.next()).toEqual({ type: 'lagged', missed: 100_000 - 1024 });
    for (let i = 100_000 - 1024; i < 100_000; i++) expect(await stalled.next()).toEqual({ type: 'n', i });
    // Its buffer is bounded: after draining, nothing is left.
    stalled.unsubscribe();
    expect(await stalled.next()).toBeNull();
  });

  it('reports lagged once per gap and then resumes normal delivery', async () => {
    const b = new SyncBroadcaster<Ev>();
    const s = b.subscribe({ capacity: 2 });
    for (let i = 0; i < 5; i++) b.publish({ type: 'n', i });
    expect(await s.next()).toEqual({ type: 'lagged', missed: 3 });
    expect(await s.next()).toEqual({ type: 'n', i: 3 });
    expect(await s.next()).toEqual({ type: 'n', i: 4 });
    b.publish({ type: 'n', i: 5 });
    expect(await s.next()).toEqual({ type: 'n', i: 5 });
  });

  it('rejects a bad capacity', () => {
    const b = new SyncBroadcaster<Ev>();
    expect(() => b.subscribe({ capacity: 0 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });
});
