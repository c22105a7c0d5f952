import { describe, expect, it } from 'vitest';
import { AsyncQueue } from './async-queue.js';

function recorder(): { items: number[]; ends: unknown[]; listener: { onItem(n: number): void; onEnd(e?: unknown): void } } {
  const items: number[] = [];
  const ends: unknown[] = [];
  return { items, ends, listener: { onItem: (n) => items.push(n), onEnd: (e) => ends.push(e ?? 'ended') } };
}

describe('AsyncQueue.listen', () => {
  it('hands buffered items first, then each pushed item synchronously, in order, and ends once', () => {
    const taken: number[] = [];
    const q = new AsyncQueue<number>({ measure: () => 10, onTake: (n) => taken.push(n) });
    q.push(1);
    q.push(2);
    expect(q.bytes).toBe(20);
    const r = recorder();
    q.listen(r.listener);
    expect(r.items).toEqual([1, 2]);
    expect(q.size).toBe(0);
    expect(q.bytes).toBe(0);
    q.push(3);
    expect(r.items).toEqual([1, 2, 3]); // no buffering, no microtask
    expect(q.size).toBe(0);
    expect(taken).toEqual([1, 2, 3]);
    q.end();
    q.end();
    expect(r.ends).toEqual(['ended']);
    expect(q.push(4)).toBe(false);
    expect(r.items).toEqual([1, 2, 3]);
  });

  it('reports a failure to onEnd, also when the queue had already failed before listening', () => {
    const q = new AsyncQueue<number>();
    const r = recorder();
    q.listen(r.listener);
    const boom = new Error('boom');
    q.fail(boom);
    expect(r.ends).toEqual([boom]);
    const failed = new AsyncQueue<number>();
    failed.push(1);
    failed.fail(boom);
    const s = recorder();
    failed.listen(s.listener);
    expect(s.items).toEqual([]); // fail() drops what was buffered
    expect(s.ends).toEqual([boom]);
  });

  it('delivers what an ended queue still buffers, then ends', () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    q.end();
    const r = recorder();
    q.listen(r.listener);
    expect(r.items).toEqual([1]);
    expect(r.ends).toEqual(['ended']);
  });

  it('has one consumer: listen after a pending shift, and shift or a second listen after listen, are refused', async () => {
    const q = new AsyncQueue<number>();
    const pending = q.shift();
    expect(() => q.listen(recorder().listener)).toThrow(/single consumer/);
    q.push(7);
    await expect(pending).resolves.toBe(7);
    q.listen(recorder().listener);
    expect(() => q.listen(recorder().listener)).toThrow(/single consumer/);
    await expect(q.shift()).rejects.toThrow(/single consumer/);
  });
});
