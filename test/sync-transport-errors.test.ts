// Errors a transport handles by itself (here: failed attempts to reach a relay) reach the
// database's events when the database built the transport from a configuration.
import { createServer } from 'node:net';
import { expect, it } from 'vitest';
import { openDatabase } from '@rhizome/sync';
import type { SyncEvent } from '@rhizome/core';

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

it('a relay that cannot be reached is reported as error events naming the URL, and the app hook sees them too', async () => {
  const port = await closedPort();
  const relayUrl = `ws://127.0.0.1:${port}`;
  const seenByApp: string[] = [];
  const db = await openDatabase({
    id: 'transport-errors',
    transport: { mode: 'relay', relayUrl, timeoutMs: 500, onError: (e) => seenByApp.push(e.code ?? '') },
  });
  try {
    const events = db.events.subscribe();
    let first: SyncEvent | null = null;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const e = await Promise.race([events.next(), new Promise<null>((r) => setTimeout(() => r(null), deadline - Date.now()))]);
      if (e === null) break;
      if (e.type === 'error') {
        first = e;
        break;
      }
    }
    expect(first, 'an error event within 15 s').not.toBeNull();
    const error = (first as Extract<SyncEvent, { type: 'error' }>).error;
    expect(error.code).toBe('ERR_CONNECT_FAILED');
    expect(error.message).toContain(`127.0.0.1:${port}`);
    expect(seenByApp).toContain('ERR_CONNECT_FAILED');
    // The database keeps working locally meanwhile.
    db.put('n', { ok: true });
    expect(db.get('n')).toEqual({ ok: true });
  } finally {
    await db.close();
  }
});
