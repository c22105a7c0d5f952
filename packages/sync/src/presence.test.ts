import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DatabaseAwareness } from './presence.js';
import { DatabaseDoc } from './database-doc.js';

describe("DatabaseAwareness (y-protocols' awareness checked by one shared timer)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('renews the local state and drops stale remote states as y-protocols does, with one timer for every instance, none once all are destroyed', () => {
    vi.useFakeTimers();
    const errors: unknown[] = [];
    // An error sink may be an object with reportError (a database passes its host).
    const a = new DatabaseAwareness(new Y.Doc(), { reportError: (e) => errors.push(e) });
    const b = new DatabaseAwareness(new Y.Doc(), (e) => errors.push(e));
    const c = new DatabaseAwareness(new Y.Doc(), (e) => errors.push(e));
    // One shared interval for the three (y-protocols makes one each).
    expect(vi.getTimerCount()).toBe(1);
    a.setLocalState({ name: 'a' });
    b.setLocalState({ name: 'b' });
    awarenessProtocol.applyAwarenessUpdate(a, awarenessProtocol.encodeAwarenessUpdate(b, [b.clientID]), 'remote');
    expect(a.getStates().get(b.clientID)).toEqual({ name: 'b' });
    const clock0 = a.meta.get(a.clientID)!.clock;
    const updates: number[][] = [];
    a.on('update', ({ updated, removed }: { updated: number[]; removed: number[] }) => updates.push([...updated, ...removed.map((r) => -r)]));

    // y-protocols stamps states with lib0's clock (Date.now captured at import, not faked): age
    // them by hand, then let one check period pass.
    const age = (aw: awarenessProtocol.Awareness, ms: number): void => aw.meta.forEach((m) => (m.lastUpdated -= ms));
    const period = Math.floor(awarenessProtocol.outdatedTimeout / 10);
    // 15 s old: the local state is renewed (its clock moves, an 'update' for it), B's is kept.
    age(a, 15_000);
    vi.advanceTimersByTime(period);
    expect(a.meta.get(a.clientID)!.clock).toBeGreaterThan(clock0);
    expect(updates).toContainEqual([a.clientID]);
    expect(a.getStates().has(b.clientID)).toBe(true);

    // 30 s without news from B: A drops B's state (origin 'timeout'); A's own state stays.
    age(a, 15_000);
    vi.advanceTimersByTime(period);
    expect(a.getStates().has(b.clientID)).toBe(false);
    expect(updates).toContainEqual([-b.clientID]);
    expect(a.getLocalState()).toEqual({ name: 'a' });
    expect(errors).toEqual([]);

    // A listener that throws during a check is reported, and the others are still checked.
    const thrower = (): void => {
      throw new Error('app listener');
    };
    a.on('update', thrower);
    const bClock = b.meta.get(b.clientID)!.clock;
    age(a, 15_000);
    age(b, 15_000);
    vi.advanceTimersByTime(period);
    expect(errors).toHaveLength(1);
    expect(b.meta.get(b.clientID)!.clock).toBeGreaterThan(bClock);

    a.off('update', thrower);
    a.destroy();
    b.destroy();
    expect(vi.getTimerCount()).toBe(1);
    c.destroy();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('on a database document it registers no destroy listener; destroying the document destroys it and stops its checks', () => {
    vi.useFakeTimers();
    const doc = new DatabaseDoc();
    const a = new DatabaseAwareness(doc, () => undefined);
    expect((doc._observers as unknown as Map<string, unknown>).has('destroy')).toBe(false);
    expect(vi.getTimerCount()).toBe(1);
    const destroyed: unknown[] = [];
    a.on('destroy', () => destroyed.push(true));
    doc.destroy();
    expect(destroyed).toEqual([true]);
    expect(a.getLocalState()).toBeNull();
    expect(vi.getTimerCount()).toBe(0);
    // Destroying it again (the database's close does) is harmless.
    a.destroy();
  });
  it("takes the database's 'update' hook first, then on() listeners; holds no lib0 registry while nobody listens", () => {
    const doc = new DatabaseDoc();
    const aw = new DatabaseAwareness(doc, () => undefined);
    const lazy = (): unknown => (aw as unknown as { _lazyObservers: unknown })._lazyObservers;
    expect(lazy()).toBeNull();
    const order: string[] = [];
    aw.hook = { onAwarenessUpdate: (changes, origin) => order.push(`hook ${changes.updated.length} ${String(origin)}`) };
    aw.setLocalStateField('x', 1);
    expect(order).toEqual(['hook 1 local']);
    const onUpdate = (): void => void order.push('listener');
    aw.on('update', onUpdate);
    aw.once('change', () => order.push('once'));
    expect(lazy()).toBeInstanceOf(Map);
    aw.setLocalStateField('x', 2);
    expect(order).toEqual(['hook 1 local', 'once', 'hook 1 local', 'listener']);
    aw.off('update', onUpdate);
    expect(lazy()).toBeNull();
    aw.hook = null;
    aw.setLocalStateField('x', 3);
    expect(order).toHaveLength(4);
    aw.on('destroy', () => order.push('destroyed'));
    doc.destroy();
    expect(order.at(-1)).toBe('destroyed');
    expect(lazy()).toBeNull();
  });
});
