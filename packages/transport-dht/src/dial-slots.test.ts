import { AbortError } from '@rhizome/core';
import { describe, expect, it } from 'vitest';
import { DialSlots } from './dial-slots.js';

const never = (): boolean => false;
/** Resolves to 'pending' if the promise has not settled after the current macrotask. */
async function state<T>(p: Promise<T>): Promise<'pending' | 'resolved' | 'rejected'> {
  let s: 'pending' | 'resolved' | 'rejected' = 'pending';
  p.then(() => (s = 'resolved'), () => (s = 'rejected'));
  await new Promise((resolve) => setImmediate(resolve));
  return s;
}

describe('DialSlots', () => {
  it('starts at most `max` dials; the next waits until one releases, in arrival order', async () => {
    const slots = new DialSlots(2, 60_000);
    const signal = new AbortController().signal;
    const a = await slots.acquire(never, signal);
    const b = await slots.acquire(never, signal);
    const c = slots.acquire(never, signal);
    const d = slots.acquire(never, signal);
    expect(await state(c)).toBe('pending');
    expect(slots.used).toBe(2);
    expect(slots.waiting).toBe(2);
    a();
    a(); // idempotent: frees one slot only
    expect(await state(c)).toBe('resolved');
    expect(await state(d)).toBe('pending');
    b();
    expect(await state(d)).toBe('resolved');
    (await c)();
    (await d)();
    expect(slots.used).toBe(0);
  });

  it('a dial whose peer got a link goes at once without a slot (on acquire or when woken)', async () => {
    const slots = new DialSlots(1, 60_000);
    const signal = new AbortController().signal;
    const held = await slots.acquire(never, signal);
    let linked = false;
    const waiting = slots.acquire(() => linked, signal);
    expect(await state(waiting)).toBe('pending');
    linked = true;
    slots.wake();
    expect(await state(waiting)).toBe('resolved');
    (await waiting)(); // a no-op release
    expect(slots.used).toBe(1);
    const direct = await slots.acquire(() => true, signal);
    direct();
    expect(slots.used).toBe(1);
    held();
    expect(slots.used).toBe(0);
  });

  it('a slot held past holdMs counts no more (a hanging dial does not hold up the rest)', async () => {
    const slots = new DialSlots(1, 20);
    const signal = new AbortController().signal;
    const hanging = await slots.acquire(never, signal);
    const next = slots.acquire(never, signal);
    const release = await next; // resolves once the hold timer frees the first slot
    expect(slots.used).toBe(1);
    hanging(); // late release of a slot already freed: no effect
    expect(slots.used).toBe(1);
    release();
    expect(slots.used).toBe(0);
  });

  it('an aborted waiter rejects with AbortError and gives its place to the next', async () => {
    const slots = new DialSlots(1, 60_000);
    const held = await slots.acquire(never, new AbortController().signal);
    const controller = new AbortController();
    const aborted = slots.acquire(never, controller.signal);
    const after = slots.acquire(never, new AbortController().signal);
    controller.abort();
    await expect(aborted).rejects.toBeInstanceOf(AbortError);
    expect(slots.waiting).toBe(1);
    held();
    expect(await state(after)).toBe('resolved');
    await expect(slots.acquire(never, AbortSignal.abort())).rejects.toBeInstanceOf(AbortError);
  });
});
