// Shared set-up of the idle-replica tests: a relay on 127.0.0.1 and relay replicas with fast
// health pings, all closed after each test, and a bounded poll (pongs raise no event to wait on).
import { afterEach } from 'vitest';
import { openDatabase } from '@rhizome/sync';
import type { Database } from '@rhizome/sync';
import { createRelayServer } from '@rhizome/relay';
import type { RelayServer } from '@rhizome/relay';

export function idleFixture(): {
  poll: (check: () => boolean, what: string, timeoutMs?: number) => Promise<void>;
  relay: () => Promise<RelayServer>;
  replica: (id: string, url: string) => Promise<Database>;
} {
  const cleanup: Array<() => Promise<void>> = [];

  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
  });

  /** Polls `check` every 20 ms until it holds; fails after `timeoutMs` (pongs raise no event to wait on). */
  async function poll(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async function relay(): Promise<RelayServer> {
    const server = await createRelayServer({ port: 0, host: '127.0.0.1' });
    cleanup.push(() => server.close());
    return server;
  }

  async function replica(id: string, url: string): Promise<Database> {
    const db = await openDatabase({ id, transport: { mode: 'relay', relayUrl: url }, health: { pingIntervalMs: 100, checkIntervalMs: 50 } });
    cleanup.push(() => db.close({ flushTimeoutMs: 0 }));
    return db;
  }
  return { poll, relay, replica };
}
