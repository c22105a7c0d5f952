// Connection.trySend on the relay transport (the sync layer's synchronous send path): it takes a
// message at once while the remote reader's window has credit, refuses (sending nothing) when the
// message would have to wait, never overtakes a pending send, and every message sent either way
// arrives once, in order. Real relay, real sockets on 127.0.0.1.
import { afterEach, describe, expect, it } from 'vitest';
import type { Connection } from '@rhizome/core';
import { within } from '@rhizome/core/testing';
import type { RelayConnection } from '@rhizome/transport-relay';
import { relayPair } from './relay-pair.js';

const WAIT = 15_000;
const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

async function pair(): Promise<{ sender: Connection; reader: Connection }> {
  const [sender, reader] = await relayPair('try-send', cleanup, WAIT);
  return { sender, reader };
}

function numbered(i: number, size: number): Uint8Array {
  const m = new Uint8Array(size);
  new DataView(m.buffer).setUint32(0, i);
  return m;
}

describe('RelayConnection.trySend', () => {
  it('takes messages at once while the window has credit, then refuses without sending; send queues behind; all arrive once, in order', async () => {
    const { sender, reader } = await pair();
    expect(typeof sender.trySend).toBe('function');
    const sends: Array<Promise<void>> = [];
    let taken = 0;
    let refusedAt = -1;
    // 64 KiB messages against a 4 MiB window: the reader does not read, so credit runs out.
    const N = 200;
    for (let i = 0; i < N; i++) {
      const m = numbered(i, 64 * 1024);
      if (sender.trySend!(m)) {
        // Never after a refusal: a pending send is never overtaken.
        expect(refusedAt).toBe(-1);
        taken++;
      } else {
        if (refusedAt < 0) refusedAt = i;
        sends.push(sender.send(m));
      }
    }
    expect(taken).toBeGreaterThan(0);
    expect(refusedAt).toBeGreaterThan(0);
    expect(taken).toBe(refusedAt);
    expect(taken).toBeLessThan(N);
    expect((sender as RelayConnection).sendWindow.credit).toBeLessThan(64 * 1024 + 512);

    for (let i = 0; i < N; i++) {
      const m = await within(WAIT, `message ${i}`, reader.receive());
      expect(m!.length).toBe(64 * 1024);
      expect(new DataView(m!.buffer, m!.byteOffset).getUint32(0)).toBe(i);
    }
    await within(WAIT, 'every send to resolve', Promise.all(sends));
    // Credit came back: small messages are taken at once again, and arrive.
    expect(sender.trySend!(numbered(N, 8))).toBe(true);
    const last = await within(WAIT, 'the last message', reader.receive());
    expect(new DataView(last!.buffer, last!.byteOffset).getUint32(0)).toBe(N);
  });

  it('refuses on a closed connection (sending nothing), where send rejects with ERR_CONNECTION_CLOSED', async () => {
    const { sender, reader } = await pair();
    await sender.close();
    expect(sender.trySend!(numbered(1, 8))).toBe(false);
    await expect(sender.send(numbered(2, 8))).rejects.toMatchObject({ code: 'ERR_CONNECTION_CLOSED' });
    expect(await within(WAIT, 'the close to reach the reader', reader.receive())).toBeNull();
  });
});
