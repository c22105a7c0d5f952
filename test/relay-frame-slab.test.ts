// The relay client's outgoing frames are views of shared slabs (transport-relay frame-slab.ts,
// BENCHMARKS.md § Issue 12, Session 15 (rssnative)): many small messages of both directions sent
// in one tick, interleaved with window grants, arrive intact, once and in order. Fails if a slab's
// bytes are reused or overlap while frames wait in the socket. Real relay, sockets on 127.0.0.1.
import { afterEach, describe, expect, it } from 'vitest';
import type { Connection } from '@rhizome/core';
import { relayPair } from './relay-pair.js';

const WAIT = 15_000;
const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

/** Message `i` of `from`: its length varies (1..300 B); every byte says who and which. */
function message(from: number, i: number): Uint8Array {
  const m = new Uint8Array(1 + ((i * 37) % 300));
  for (let k = 0; k < m.length; k++) m[k] = (from * 131 + i * 7 + k) & 0xff;
  return m;
}

async function collect(conn: Connection, n: number): Promise<Uint8Array[]> {
  const got: Uint8Array[] = [];
  while (got.length < n) {
    const m = await conn.receive();
    if (m === null) break;
    got.push(m.slice());
  }
  return got;
}

describe('relay client frames cut from slabs', () => {
  it('arrive intact, once and in order, both ways, sent many to a tick', async () => {
    const [a, b] = await relayPair('frame-slab', cleanup, WAIT);
    const N = 600; // ~90 KiB each way: several slabs, and window grants between them
    const received = [collect(a, N), collect(b, N)];
    const sends: Array<Promise<void>> = [];
    for (let i = 0; i < N; i++) {
      sends.push(a.send(message(0, i)));
      sends.push(b.send(message(1, i)));
    }
    await Promise.all(sends);
    const [atA, atB] = await Promise.all(received);
    expect(atB!.length).toBe(N);
    expect(atA!.length).toBe(N);
    for (let i = 0; i < N; i++) {
      expect(atB![i]).toEqual(message(0, i));
      expect(atA![i]).toEqual(message(1, i));
    }
  });
});
