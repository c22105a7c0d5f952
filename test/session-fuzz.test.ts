// Fuzzing a LIVE sync session (issue 10): a hostile peer joins the topic of two databases with
// SQLite files (memory transport hub) and sends one of them, A, garbage: unsealed bytes (what
// anyone who knows the topic can send), and frames sealed with the database key (what a broken
// or hostile key holder can send) carrying random plaintexts, corrupted chunk streams, every
// message type with random bodies, and Yjs updates of random bytes. After every case A must
// still answer a sealed ping on that session or have closed it (never hang, never crash); every
// error it reports is typed (`ERR_*`). After all cases: A's good nodes are unchanged, A and the
// good peer B still converge on new writes, A's file reopened alone holds exactly A's nodes, and
// the process's memory grew by a bounded amount. Seeded fast-check; case counts are printed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryHub, MemoryTransport, deriveTopic, type Connection, type SyncEvent } from '@rhizome/core';
import { openDatabase, type Database } from '@rhizome/sync';
import { FrameSealer, keyMaterial } from '../packages/sync/src/seal.js';
import {
  MSG_AWARENESS,
  MSG_PING,
  MSG_PONG,
  MSG_SYNC_STEP1,
  MSG_SYNC_STEP2,
  MSG_UPDATES,
  Reassembler,
  decodeMessage,
  encodeBatch,
  encodeProbe,
  encodeStep1,
  encodeStep2,
  encodeUpdates,
  toFrames,
} from '../packages/sync/src/wire.js';
import { MSG_REPLICA } from '../packages/sync/src/replicas.js';
import { connectionTo } from './sync-helpers.js';

const SEED = 0x5e5510;
const RUNS = 1000;
const MiB = 1024 * 1024;
const ID = `session-fuzz-${process.pid}`;
const TOPIC = deriveTopic(ID);
const GOOD = 40;

const hub = new MemoryHub(`session-fuzz-${process.pid}`);
let dir: string;
let a: Database;
let b: Database;
const errors = new Map<string, number>();
let untyped: unknown[] = [];
let watching: Promise<void> | undefined;

const bytes = (max: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: 0, maxLength: max });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(10);
  }
}

function goodData(i: number): Record<string, string | number> {
  return { title: `good ${i}`, n: i };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rhizome-session-fuzz-'));
  a = await openDatabase({ id: ID, path: join(dir, 'a.db'), transport: new MemoryTransport({ hub, peerId: 'good-a' }), limits: { maxMessageBytes: 4 * MiB } });
  b = await openDatabase({ id: ID, path: join(dir, 'b.db'), transport: new MemoryTransport({ hub, peerId: 'good-b' }) });
  const events = a.events.subscribe({ capacity: 100_000 });
  watching = (async () => {
    for await (const event of events as AsyncIterable<SyncEvent>) {
      if (event.type !== 'error') continue;
      const code = (event.error as { code?: unknown }).code;
      if (typeof code === 'string' && code.startsWith('ERR_')) errors.set(code, (errors.get(code) ?? 0) + 1);
      else untyped.push(event.error);
    }
  })();
  await a.whenSynced({ minPeers: 1, timeoutMs: 30_000 });
  for (let i = 0; i < GOOD; i++) (i % 2 === 0 ? a : b).put(`good-${i}`, goodData(i));
  await until(() => a.list().length === GOOD && b.list().length === GOOD, 'good pair synced');
}, 60_000);

afterAll(async () => {
  await a?.close().catch(() => undefined);
  await b?.close().catch(() => undefined);
  await watching;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** One hostile input: the frames to send A on a fresh session. */
type Attack = { kind: string; frames: Uint8Array[] };

function attacks(sealer: FrameSealer): fc.Arbitrary<Attack> {
  const seal = (plain: Uint8Array): Uint8Array => sealer.seal(plain);
  const whole = (message: Uint8Array): Uint8Array[] => toFrames(message, 1 << 20).map(seal);
  const requestId = bytes(16).map((r) => Uint8Array.from({ length: 16 }, (_, i) => r[i] ?? 0));
  const message = fc.oneof(
    // Every message type with a random body (and types no peer sends).
    fc.tuple(fc.constantFrom(MSG_SYNC_STEP1, MSG_SYNC_STEP2, MSG_UPDATES, MSG_AWARENESS, MSG_PING, MSG_PONG, MSG_REPLICA, 0x00, 0x08, 0xff), bytes(200)).map(([t, body]) => Uint8Array.from([t, ...body])),
    // Well-formed envelopes around random Yjs bytes: state vectors, updates, awareness.
    fc.tuple(requestId, bytes(120)).map(([r, sv]) => encodeStep1(r, sv)),
    fc.tuple(requestId, bytes(300)).map(([r, u]) => encodeStep2(r, u)),
    fc.array(bytes(200), { minLength: 1, maxLength: 4 }).map((us) => encodeUpdates(us)),
  );
  return fc.oneof(
    fc.array(bytes(300), { minLength: 1, maxLength: 6 }).map((frames) => ({ kind: 'unsealed bytes', frames })),
    fc.array(bytes(200), { minLength: 1, maxLength: 6 }).map((plains) => ({ kind: 'sealed random plaintexts', frames: plains.map(seal) })),
    fc.array(message, { minLength: 1, maxLength: 4 }).map((ms) => ({ kind: 'sealed random messages', frames: ms.flatMap(whole) })),
    // The same inside a batch (a session's opening frame).
    fc.array(message.filter((m) => m.length > 0), { minLength: 1, maxLength: 4 }).map((ms) => ({ kind: 'sealed batches of random messages', frames: whole(encodeBatch(ms)) })),
    // A chunked message (a random body) with corrupted chunk headers, sealed.
    fc.tuple(bytes(3000), fc.integer({ min: 40, max: 500 }), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 })).map(([body, room, flips]) => {
      const frames = toFrames(Uint8Array.from([MSG_UPDATES, ...body]), room);
      for (const [at, v] of flips) {
        const f = frames[at % frames.length]!;
        f[at % Math.min(f.length, 21)] = v;
      }
      return { kind: 'sealed corrupted chunks', frames: frames.map(seal) };
    }),
    // A chunk announcing a message above A's maxMessageBytes (4 MiB).
    fc.integer({ min: 4 * MiB + 1, max: 0xffffffff }).map((total) => {
      const frame = toFrames(new Uint8Array(600), 100)[0]!;
      new DataView(frame.buffer).setUint32(17, total);
      return { kind: 'sealed oversized chunk', frames: [seal(frame)] };
    }),
  );
}

/** Reads A's frames on `conn` until a PONG for `id` (true) or the end of the connection (false). */
async function pongOrClose(conn: Connection, sealer: FrameSealer, id: number): Promise<boolean> {
  const reassembler = new Reassembler(64 * MiB);
  for (;;) {
    const frame = await conn.receive();
    if (frame === null) return false;
    const r = reassembler.push(sealer.open(frame));
    if (r.kind === 'message' && r.message[0] === MSG_PONG) {
      const pong = decodeMessage(r.message);
      if (pong.type === MSG_PONG && pong.id === id) return true;
    }
  }
}

describe('fuzzing a live sync session', () => {
  it('garbage, sealed or not, from a peer on the topic: A never crashes or hangs, reports only typed errors, keeps its data, and still converges with the good peer', async () => {
    const sealer = new FrameSealer(keyMaterial(ID), TOPIC);
    const rssBefore = process.memoryUsage().rss;
    const before = JSON.stringify(a.list());
    const outcomes = new Map<string, { answered: number; closed: number }>();
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(attacks(sealer), async (attack) => {
        cases++;
        const evil = new MemoryTransport({ hub, peerId: `evil-${cases}` });
        const ac = new AbortController();
        try {
          const toA = await connectionTo(evil, TOPIC, 'good-a', ac.signal);
          for (const f of attack.frames) await toA.send(f).catch(() => undefined);
          // A handled every frame before this ping once it answers (or it closed the session).
          const id = cases;
          for (const f of toFrames(encodeProbe(MSG_PING, id), 1 << 20)) await toA.send(sealer.seal(f)).catch(() => undefined);
          let timer: ReturnType<typeof setTimeout> | undefined;
          const answered = await Promise.race([
            pongOrClose(toA, sealer, id),
            new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`case ${cases} (${attack.kind}): A neither answered nor closed within 15 s`)), 15_000))),
          ]).finally(() => clearTimeout(timer));
          const o = outcomes.get(attack.kind) ?? { answered: 0, closed: 0 };
          if (answered) o.answered++;
          else o.closed++;
          outcomes.set(attack.kind, o);
        } finally {
          ac.abort();
          await evil.disconnect();
        }
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    console.log(`live session fuzz: ${cases} cases; per kind (answered ping / session closed): ${JSON.stringify(Object.fromEntries(outcomes))}; A's error events ${JSON.stringify(Object.fromEntries(errors))}`);

    // Only typed errors; the hostile input was seen (decrypt failures and protocol errors).
    expect(untyped).toEqual([]);
    expect(errors.get('ERR_DECRYPT') ?? 0).toBeGreaterThan(0);
    expect(errors.get('ERR_PROTOCOL') ?? 0).toBeGreaterThan(0);
    // A's good data unchanged; the good pair still converges on new writes both ways.
    expect(JSON.stringify(a.list())).toBe(before);
    a.put('after-a', { ok: true });
    b.put('after-b', { ok: true });
    await until(() => a.get('after-b') !== undefined && b.get('after-a') !== undefined, 'good pair after the fuzzing');
    await until(() => JSON.stringify(a.list()) === JSON.stringify(b.list()), 'A and B list the same nodes');
    for (let i = 0; i < GOOD; i++) expect(a.get(`good-${i}`)).toEqual(goodData(i));
    // Memory: bounded growth over all cases (each case's session and buffers were released).
    const grown = process.memoryUsage().rss - rssBefore;
    console.log(`process RSS grew by ${(grown / MiB).toFixed(1)} MiB over ${cases} cases`);
    expect(grown).toBeLessThan(128 * MiB);
    // A's file, reopened alone, holds exactly A's nodes.
    const expected = JSON.stringify(a.list());
    await a.close();
    const reopened = await openDatabase({ id: ID, path: join(dir, 'a.db') });
    try {
      expect(JSON.stringify(reopened.list())).toBe(expected);
    } finally {
      await reopened.close();
    }
  }, 180_000);
});
