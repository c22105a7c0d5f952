// The database's table of active sessions (session-table.ts): a list while few, a Map past
// SESSION_LIST_LIMIT, against a Map keyed as the database keyed it before (sessionKey), under
// random adds, replacements and removals across both forms and two transport names.
import { describe, expect, it } from 'vitest';
import type { Connection } from '@rhizome/core';
import { prng } from '../../../test/prng.js';
import { SESSION_LIST_LIMIT, SessionTable, sessionKey } from './session-table.js';

interface S {
  readonly n: number;
  readonly conn: Connection;
}

describe('SessionTable', () => {
  it('answers as a Map by sessionKey under random adds, replacements and removals, below and past the list limit', () => {
    const NAME = 'relay';
    for (let seed = 1; seed <= 40; seed++) {
      const random = prng(seed);
      const pick = (k: number): number => Math.floor(random() * k);
      const peers = seed % 2 === 0 ? 8 : 3 * SESSION_LIST_LIMIT;
      const table = new SessionTable<S>();
      const model = new Map<string, S>();
      const made: S[] = [];
      let maxSize = 0;
      for (let step = 0; step < 800; step++) {
        const op = random();
        if (op < 0.55) {
          // A session on the database's transport or (multi-transport) another one, whose peer ids may collide.
          const conn = { peerId: `p${pick(peers)}`, transport: random() < 0.7 ? NAME : 'memory' } as unknown as Connection;
          const s: S = { n: step, conn };
          made.push(s);
          expect(table.find(conn, NAME)).toBe(model.get(sessionKey(conn, NAME)));
          table.set(s, NAME);
          model.set(sessionKey(conn, NAME), s);
        } else if (made.length > 0) {
          const s = made[pick(made.length)]!;
          table.delete(s, NAME);
          const key = sessionKey(s.conn, NAME);
          if (model.get(key) === s) model.delete(key);
        }
        maxSize = Math.max(maxSize, table.size);
        if (table.size !== model.size) expect(table.size, `seed ${seed} step ${step}`).toBe(model.size);
        const got = [...table.values()].map((s) => s.n).sort((x, y) => x - y);
        const want = [...model.values()].map((s) => s.n).sort((x, y) => x - y);
        if (got.join() !== want.join()) expect(got, `seed ${seed} step ${step}`).toEqual(want);
      }
      if (seed % 2 === 0) expect(maxSize).toBeLessThanOrEqual(SESSION_LIST_LIMIT);
      else expect(maxSize).toBeGreaterThan(SESSION_LIST_LIMIT);
    }
  });

  it('a list of values taken stays as it was while sessions come and go', () => {
    const table = new SessionTable<S>();
    const conn = (p: string): Connection => ({ peerId: p, transport: 'relay' }) as unknown as Connection;
    const a: S = { n: 1, conn: conn('a') };
    const b: S = { n: 2, conn: conn('b') };
    table.set(a, 'relay');
    table.set(b, 'relay');
    const taken = table.values();
    table.delete(a, 'relay');
    table.set({ n: 3, conn: conn('c') }, 'relay');
    expect([...taken].map((s) => s.n)).toEqual([1, 2]);
    expect([...table.values()].map((s) => s.n)).toEqual([2, 3]);
    // Replacing the session of a peer keeps one entry for it.
    const b2: S = { n: 4, conn: conn('b') };
    table.set(b2, 'relay');
    expect(table.find(conn('b'), 'relay')).toBe(b2);
    expect(table.size).toBe(2);
    table.delete(b, 'relay'); // not the table's session of that peer any more: nothing removed
    expect(table.size).toBe(2);
  });
});
