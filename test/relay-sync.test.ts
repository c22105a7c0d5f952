// Databases syncing through a real relay on 127.0.0.1, each replica with its own SQLite file:
// two and five peers, what the relay can see (recorded at its sockets), and a relay restart.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import * as Y from 'yjs';
import { createTransport, deriveTopic, generateDatabaseId } from '@rhizome/core';
import { within } from '@rhizome/core/testing';
import { createRelayServer, RelayCore, type RelayServer } from '@rhizome/relay';
import { recordingSocket, type Recording } from '@rhizome/relay/testing';
import { openDatabase, type Database } from '@rhizome/sync';
import { until } from './sync-helpers.js';
import { RelayTransport } from '@rhizome/transport-relay';
import { prng } from './prng.js';

const WAIT = 20_000;
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rhizome-relay-sync-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCounter = 0;
function dbPath(): string {
  return join(dir, `replica-${fileCounter++}.db`);
}

function open(id: string, relayUrl: string): Promise<Database> {
  return openDatabase({ id, path: dbPath(), transport: createTransport({ mode: 'relay', relayUrl, timeoutMs: WAIT }) });
}

function snapshot(db: Database): string {
  return JSON.stringify(db.list().sort((x, y) => x.id.localeCompare(y.id)));
}

describe('databases through the relay', () => {
  let relay: RelayServer;
  beforeAll(async () => {
    relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
  });
  afterAll(() => relay.close());

  it('two peers with their own SQLite files sync both ways', async () => {
    const id = generateDatabaseId();
    const [a, b] = await Promise.all([open(id, relay.url), open(id, relay.url)]);
    try {
      a.put('note-a', { title: 'from a', n: 1 });
      await until(b, () => b.get('note-a')?.title === 'from a', 'b to see note-a', WAIT);
      b.put('note-a', { done: true });
      b.put('note-b', { title: 'from b' });
      await until(a, () => a.get('note-a')?.done === true && a.get('note-b') !== undefined, 'a to see b\'s writes', WAIT);
      expect(a.get('note-a')).toEqual({ title: 'from a', n: 1, done: true });
      expect(snapshot(a)).toBe(snapshot(b));
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('five peers converge', async () => {
    const id = generateDatabaseId();
    const dbs = await Promise.all(Array.from({ length: 5 }, () => open(id, relay.url)));
    try {
      dbs.forEach((db, i) => db.put(`node-${i}`, { owner: i }));
      await Promise.all(dbs.map((db, i) => until(db, () => db.list().length === 5, `peer ${i} to hold all five nodes`, WAIT)));
      dbs[2]!.put('node-0', { touched: 'by 2' });
      await Promise.all(dbs.map((db, i) => until(db, () => db.get('node-0')?.touched === 'by 2', `peer ${i} to see the touch`, WAIT)));
      const first = snapshot(dbs[0]!);
      for (const db of dbs) expect(snapshot(db)).toBe(first);
    } finally {
      await Promise.all(dbs.map((db) => db.close()));
    }
  });
});

describe('what the relay sees', () => {
  const recording: Recording = { received: [], sent: [] };
  const upgrades: string[] = [];
  let server: Server;
  let core: RelayCore;
  let url: string;

  beforeAll(async () => {
    // The relay's routing core on a host of our own, every socket wrapped by a recorder.
    core = new RelayCore();
    const wss = new WebSocketServer({ noServer: true, maxPayload: core.options.maxFrameSize, perMessageDeflate: false });
    server = createServer();
    server.on('upgrade', (req, socket, head) => {
      upgrades.push(`${req.url ?? ''} ${JSON.stringify(req.headers)}`);
      wss.handleUpgrade(req, socket, head, (ws) => core.attach(recordingSocket(ws, recording), { ip: '127.0.0.1' }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await core.close();
    await new Promise<void>((r) => server.close(() => r()));
  });

  function seen(needle: string | Uint8Array): boolean {
    const n = typeof needle === 'string' ? Buffer.from(needle, 'utf8') : Buffer.from(needle);
    const all = [...recording.received, ...recording.sent, ...upgrades.map((u) => Buffer.from(u))];
    return all.some((m) => Buffer.from(m.buffer, m.byteOffset, m.byteLength).indexOf(n) >= 0);
  }

  it('never a node\'s plaintext nor the database id, in any byte received or sent', async () => {
    const id = generateDatabaseId();
    const marker = `PLAINTEXT-MARKER-${generateDatabaseId()}`;
    const [a, b] = await Promise.all([open(id, url), open(id, url)]);
    try {
      a.put('secret-node', { body: marker });
      await until(b, () => b.get('secret-node')?.body === marker, 'b to receive the marker node', WAIT);
      b.put('reply', { body: `${marker}-reply` });
      await until(a, () => a.get('reply') !== undefined, 'a to receive the reply', WAIT);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
    const bytes = [...recording.received, ...recording.sent].reduce((n, m) => n + m.length, 0);
    expect(bytes).toBeGreaterThan(1000); // the sync traffic did go through the recorder
    expect(seen(deriveTopic(id))).toBe(true); // the topic is public, by design
    expect(seen(marker)).toBe(false);
    expect(seen(id)).toBe(false);

    // The control: unsealed bytes through the same relay are found by the same scan.
    const p = new RelayTransport({ url, timeoutMs: WAIT });
    const q = new RelayTransport({ url, timeoutMs: WAIT });
    try {
      const topic = deriveTopic('control');
      const first = async (t: RelayTransport) => (await within(WAIT, 'conn', (await t.connect(topic))[Symbol.asyncIterator]().next())).value!;
      const [cp, cq] = await Promise.all([first(p), first(q)]);
      await cp.send(Buffer.from(`unsealed ${marker}`));
      await within(WAIT, 'control message', cq.receive());
      expect(seen(marker)).toBe(true);
    } finally {
      await Promise.all([p.disconnect(), q.disconnect()]);
    }
  });
});

describe('relay restart mid-session', () => {
  it('peers reconnect by themselves and converge, including writes made during the outage', async () => {
    let relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
    const port = relay.port;
    const id = generateDatabaseId();
    const [a, b] = await Promise.all([open(id, relay.url), open(id, relay.url)]);
    try {
      a.put('before', { v: 1 });
      await until(b, () => b.get('before') !== undefined, 'b to see the first write', WAIT);
      const disconnected = Promise.all([
        until(a, () => a.peers().length === 0, 'a to notice the outage', WAIT),
        until(b, () => b.peers().length === 0, 'b to notice the outage', WAIT),
      ]);
      await relay.close();
      await disconnected;
      a.put('during-a', { v: 2 });
      b.put('during-b', { v: 3 });
      b.put('before', { edited: 'during the outage' });
      relay = await createRelayServer({ port, host: '127.0.0.1' });
      await Promise.all([
        until(a, () => a.get('during-b') !== undefined && a.get('before')?.edited !== undefined, 'a to get b\'s outage writes', WAIT),
        until(b, () => b.get('during-a') !== undefined, 'b to get a\'s outage write', WAIT),
      ]);
      expect(snapshot(a)).toBe(snapshot(b));
      expect(a.list().length).toBe(3);
      // And the link keeps working afterwards.
      a.put('after', { v: 4 });
      await until(b, () => b.get('after') !== undefined, 'b to see a write after the restart', WAIT);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await relay.close();
    }
  });
});

describe('seeded chaos through the relay', () => {
  it('random writes, deletes and relay restarts: three replicas end equal', async () => {
    const seed = Number(process.env.RELAY_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const rnd = prng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    let relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
    const port = relay.port;
    const id = generateDatabaseId();
    const dbs = await Promise.all(
      [0, 1, 2].map(() =>
        openDatabase({
          id,
          path: dbPath(),
          transport: new RelayTransport({ url: relay.url, timeoutMs: WAIT, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } }),
        }),
      ),
    );
    let restarts = 0;
    try {
      for (let step = 0; step < 60; step++) {
        const r = rnd();
        const db = pick(dbs);
        if (r < 0.6) db.put(`n${Math.floor(rnd() * 8)}`, { [pick(['a', 'b', 'c'])]: Math.floor(rnd() * 1000), by: dbs.indexOf(db) });
        else if (r < 0.7) db.delete(`n${Math.floor(rnd() * 8)}`);
        else if (r < 0.8) {
          await relay.close();
          restarts++;
          relay = await createRelayServer({ port, host: '127.0.0.1' });
        } else {
          // Let the network run for a few turns of the event loop.
          for (let i = 0; i < Math.floor(rnd() * 50); i++) await new Promise((res) => setImmediate(res));
        }
      }
      const vector = (db: Database): string => Buffer.from(Y.encodeStateVector(db.doc)).toString('hex');
      const converged = (): boolean => dbs.every((db) => vector(db) === vector(dbs[0]!) && snapshot(db) === snapshot(dbs[0]!));
      // Re-check on any replica's event: the last change may land on another replica.
      const subs = dbs.map((db) => db.events.subscribe());
      let settled = false;
      try {
        await within(
          WAIT,
          `the replicas to converge (seed ${seed}, ${restarts} restarts)`,
          new Promise<void>((resolve) => {
            if (converged()) resolve();
            for (const sub of subs) {
              void (async () => {
                for await (const _event of sub) {
                  if (settled) return;
                  if (converged()) resolve();
                }
              })();
            }
          }),
        ).catch((error: unknown) => {
          for (const db of dbs) console.log(vector(db), db.peers().length, snapshot(db));
          throw error;
        });
      } finally {
        settled = true;
        for (const sub of subs) sub.unsubscribe();
      }
      expect(converged(), `seed ${seed}`).toBe(true);
    } finally {
      await Promise.all(dbs.map((db) => db.close()));
      await relay.close();
    }
  });
});
