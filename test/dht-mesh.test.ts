// Replicas of one database on the DHT transport, 8 in this process and 3 in child processes,
// all on 127.0.0.1. Each is given only the bootstrap node's address: they find each other
// through the DHT (provider records of the database's topic), connect directly, and sync.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateDatabaseId, type JsonValue, type SyncEvent } from '@rhizome/core';
import { within } from '@rhizome/core/testing';
import { openDatabase, type Database } from '@rhizome/sync';
import { DhtTransport, startBootstrapNode, type BootstrapNode } from '@rhizome/transport-dht';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Generous: the machine may be shared; on an idle 2-core box each wait takes a few seconds.
const WAIT = 45_000;
const FIXTURE = join(import.meta.dirname, 'fixtures', 'dht-peer.ts');
const ROOT = join(import.meta.dirname, '..');

type Msg = { type: string; peerId?: string; list?: Array<{ id: string; data: Record<string, JsonValue> }>; [k: string]: unknown };

/** A replica in a child process, driven by JSON lines (see test/fixtures/dht-peer.ts). */
class ChildPeer {
  readonly proc: ChildProcess;
  readonly messages: Msg[] = [];
  readonly stderr: string[] = [];
  peerId = '';
  #listeners = new Set<() => void>();
  exited: Promise<number | null>;

  constructor(args: { id: string; path: string; bootstrap: string[] }) {
    this.proc = spawn(process.execPath, ['--conditions=rhizome-source', '--import', 'tsx', FIXTURE, JSON.stringify(args)], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)));
    let buffered = '';
    this.proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.trim()) this.messages.push(JSON.parse(line) as Msg);
      }
      for (const fn of this.#listeners) fn();
    });
    this.proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => this.stderr.push(chunk));
  }

  /** The first message (from `from` on) matching `pred`, waiting for it if needed. */
  waitFor(what: string, pred: (m: Msg) => boolean, from = 0): Promise<Msg> {
    const found = (): Msg | undefined => this.messages.slice(from).find(pred);
    const now = found();
    if (now) return Promise.resolve(now);
    return within(
      WAIT,
      `${what} (child stderr: ${this.stderr.join('').slice(-500)})`,
      new Promise<Msg>((resolve) => {
        const check = (): void => {
          const m = found();
          if (m) {
            this.#listeners.delete(check);
            resolve(m);
          }
        };
        this.#listeners.add(check);
      }),
    );
  }

  send(command: Record<string, unknown>): void {
    this.proc.stdin!.write(`${JSON.stringify(command)}\n`);
  }
}

/** An in-process replica: its database, its transport, and every event it reported. */
interface Replica {
  name: string;
  db: Database;
  transport: DhtTransport;
  events: SyncEvent[];
  notify: Set<() => void>;
}

async function openReplica(name: string, id: string, path: string, bootstrap: string): Promise<Replica> {
  // mdns off: these replicas must find each other through the DHT, not on the LAN.
  const transport = new DhtTransport({ bootstrap: [bootstrap], listen: ['/ip4/127.0.0.1/tcp/0'], allowPrivateAddresses: true, mdns: false });
  const db = await openDatabase({ id, path, transport });
  const replica: Replica = { name, db, transport, events: [], notify: new Set() };
  const sub = db.events.subscribe({ capacity: 100_000 });
  void (async () => {
    for await (const e of sub) {
      replica.events.push(e);
      for (const fn of replica.notify) fn();
    }
  })();
  return replica;
}

/** Resolves once `cond` holds, re-checked after every event of the replica; bounded by WAIT. */
function until(r: Replica, what: string, cond: () => boolean): Promise<void> {
  if (cond()) return Promise.resolve();
  return within(
    WAIT,
    `${r.name}: ${what}`,
    new Promise<void>((resolve) => {
      const check = (): void => {
        if (cond()) {
          r.notify.delete(check);
          resolve();
        }
      };
      r.notify.add(check);
    }),
  );
}

const sorted = (list: Array<{ id: string; data: Record<string, JsonValue> }>): string =>
  JSON.stringify([...list].sort((a, b) => (a.id < b.id ? -1 : 1)));

describe('DHT transport: 8 replicas in process + 3 child processes', () => {
  const id = generateDatabaseId();
  let dir: string;
  let bootstrap: BootstrapNode;
  let bootstrapAddr: string;
  const replicas: Replica[] = [];
  const children: ChildPeer[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rhizome-dht-mesh-'));
    bootstrap = await startBootstrapNode({ listen: ['/ip4/127.0.0.1/tcp/0'], allowPrivateAddresses: true });
    bootstrapAddr = bootstrap.multiaddrs()[0]!;
    for (let k = 0; k < 3; k++) children.push(new ChildPeer({ id, path: join(dir, `child-${k}.db`), bootstrap: [bootstrapAddr] }));
    const opened = await Promise.all(
      Array.from({ length: 7 }, (_, i) => openReplica(`in-${i}`, id, join(dir, `in-${i}.db`), bootstrapAddr)),
    );
    replicas.push(...opened);
    for (const c of children) c.peerId = (await c.waitFor('child ready', (m) => m.type === 'ready')).peerId!;
  }, 120_000);

  afterAll(async () => {
    await Promise.all(replicas.map(async (r) => {
      await r.db.close().catch(() => {});
      await r.transport.disconnect();
    }));
    for (const c of children) {
      if (c.proc.exitCode === null && c.proc.signalCode === null) {
        c.proc.kill('SIGKILL');
        await c.exited;
      }
    }
    await bootstrap?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('replicas given only the bootstrap address find each other, connect directly, and converge', async () => {
    const all = [...replicas.map((r) => r.transport.peerId), ...children.map((c) => c.peerId)];
    expect(new Set(all).size).toBe(10);
    // Every in-process replica ends up connected to each of the 9 others: a full mesh found
    // through the DHT, with one connection per pair.
    await Promise.all(
      replicas.map((r) =>
        until(r, 'connected to the 9 others', () => {
          const peers = new Set(r.db.peers().map((p) => p.peerId));
          return all.every((p) => p === r.transport.peerId || peers.has(p));
        }),
      ),
    );
    // One connection per pair: no replica lists a peer twice.
    for (const r of replicas) {
      const ids = r.db.peers().map((p) => p.peerId);
      expect(new Set(ids).size).toBe(ids.length);
    }

    replicas.forEach((r, i) => r.db.put(`in-${i}`, { from: r.name }));
    children.forEach((c, k) => c.send({ cmd: 'put', nodeId: `child-${k}`, data: { from: `child-${k}` } }));
    // Concurrent writes of different fields of one node, in two processes: both survive.
    replicas[0]!.db.put('shared', { title: 'written in process' });
    children[0]!.send({ cmd: 'put', nodeId: 'shared', data: { done: true } });
    const total = 7 + 3 + 1;

    await Promise.all(replicas.map((r) => until(r, `${total} nodes`, () => r.db.size === total && Object.keys(r.db.get('shared') ?? {}).length === 2)));
    const marks = children.map((c) => c.messages.length);
    children.forEach((c) => c.send({ cmd: 'waitNodes', count: total, timeoutMs: WAIT }));
    const lists = await Promise.all(children.map((c, k) => c.waitFor('child nodes', (m) => m.type === 'nodes' || m.type === 'error', marks[k])));
    const expected = sorted(replicas[0]!.db.list());
    expect(replicas[0]!.db.get('shared')).toEqual({ title: 'written in process', done: true });
    for (const r of replicas) expect(sorted(r.db.list())).toBe(expected);
    for (const m of lists) {
      expect(m.type).toBe('nodes');
      expect(sorted(m.list!)).toBe(expected);
    }
  }, 120_000);

  it('a replica that leaves (closed, or killed) is reported disconnected by every other', async () => {
    const closing = children[2]!;
    const killed = children[1]!;
    closing.send({ cmd: 'close' });
    expect(await within(WAIT, 'the closed child to exit', closing.exited)).toBe(0);
    killed.proc.kill('SIGKILL');
    await killed.exited;
    for (const gone of [closing.peerId, killed.peerId]) {
      await Promise.all(
        replicas.map((r) =>
          until(r, `peer-disconnected for ${gone}`, () => r.events.some((e) => e.type === 'peer-disconnected' && e.peerId === gone)),
        ),
      );
    }
    for (const r of replicas) expect(r.db.peers().map((p) => p.peerId)).not.toContain(killed.peerId);
    // The surviving child saw them go too.
    const survivor = children[0]!;
    await survivor.waitFor('disconnect of the closed child', (m) => m.type === 'peer-disconnected' && m.peerId === closing.peerId);
    await survivor.waitFor('disconnect of the killed child', (m) => m.type === 'peer-disconnected' && m.peerId === killed.peerId);
  }, 120_000);

  it('a late joiner finds the replicas through the DHT and catches up', async () => {
    const before = replicas[0]!.db.size;
    for (let i = 0; i < 50; i++) replicas[i % replicas.length]!.db.put(`while-away-${i}`, { i });
    const expectedSize = before + 50;
    await until(replicas[0]!, `${expectedSize} nodes`, () => replicas[0]!.db.size === expectedSize);
    const late = await openReplica('late', id, join(dir, 'late.db'), bootstrapAddr);
    replicas.push(late);
    await late.db.whenSynced({ minPeers: 1, timeoutMs: WAIT });
    await until(late, `${expectedSize} nodes`, () => late.db.size === expectedSize);
    expect(sorted(late.db.list())).toBe(sorted(replicas[0]!.db.list()));
    // It joins the mesh (7 in process + the surviving child) and its writes reach the child process.
    const survivor = children[0]!;
    await until(late, 'connected to the 8 live replicas', () => late.db.peers().length === 8);
    late.db.put('from-the-late-joiner', { hello: 'world' });
    const mark = survivor.messages.length;
    survivor.send({ cmd: 'waitNodes', count: expectedSize + 1, timeoutMs: WAIT });
    const m = await survivor.waitFor('the late write', (x) => x.type === 'nodes' || x.type === 'error', mark);
    expect(m.type).toBe('nodes');
    expect(m.list!.find((n) => n.id === 'from-the-late-joiner')?.data).toEqual({ hello: 'world' });
  }, 120_000);
});
