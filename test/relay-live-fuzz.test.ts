// Fuzzing a LIVE relay (issue 10): random and malformed bytes over real sockets on 127.0.0.1 to a
// real relay process (`rhizome-relay`, createRelayServer, with a mailbox), while two databases with SQLite files
// sync through it. The relay must never crash, must answer each bad client with normal handling
// or a close with a code from CloseCode, must keep serving the good pair, and its memory must
// stay bounded. Three kinds of bad client, each a fast-check property with a fixed seed:
//   - WebSocket clients sending sequences of relay frames (random bytes, known type bytes with
//     random bodies, well-formed frames with random fields, text messages), with or without HELLO,
//     some of them joining the good pair's topic and sending to its members;
//   - TCP clients that complete the WebSocket upgrade by hand and then send random bytes
//     (invalid WebSocket framing);
//   - TCP clients sending random bytes instead of an HTTP request.
// Case counts are printed; RELIABILITY.md records them.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAILBOX_HEADER_BYTES, deriveTopic } from '@rhizome/core';
import { RawClient, startRelayProcess, type RelayProcess } from '@rhizome/relay/testing';
import { RelayTransport } from '@rhizome/transport-relay';
import {
  CloseCode,
  FrameType,
  closeCodeName,
  encodeDataFrame,
  encodeHello,
  encodePing,
  encodeTopicFrame,
  encodeMailboxPut,
  encodeMailboxRead,
  encodeMailboxWrite,
  encodeWindow,
  MailboxFrameType,
} from '@rhizome/transport-relay/protocol';
import { openDatabase, type Database } from '@rhizome/sync';

const SEED = 0x10f022;
const WS_RUNS = 600;
const UPGRADE_RUNS = 60;
const HTTP_RUNS = 60;
const MiB = 1024 * 1024;

const ID = `live-fuzz-${process.pid}`;
const TOPIC = deriveTopic(ID);
const bytes = (max: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: 0, maxLength: max });

let relay: RelayProcess;
let dir: string;
let a: Database;
let b: Database;
const transports: RelayTransport[] = [];

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

/** Resolves once `db` holds node `id` (bounded). */
async function until(db: Database, id: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (db.get(id) === undefined) {
    if (Date.now() > deadline) throw new Error(`node ${id} did not arrive within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function healthz(): Promise<{ connections: number }> {
  const res = await fetch(`${relay.url.replace(/^ws/, 'http')}/healthz`);
  return (await res.json()) as { connections: number };
}

/** The good pair still syncs both ways through the relay. */
async function goodPairWorks(tag: string): Promise<void> {
  a.put(`a-${tag}`, { tag });
  b.put(`b-${tag}`, { tag });
  await until(b, `a-${tag}`);
  await until(a, `b-${tag}`);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rhizome-live-fuzz-'));
  // With a mailbox, so the mailbox frames meet a real mailbox service and SQLite store too.
  relay = await startRelayProcess(['--port', '0', '--host', '127.0.0.1', '--mailbox', join(dir, 'mailbox.db')]);
  for (const name of ['a', 'b']) transports.push(new RelayTransport({ url: relay.url, peerId: `good-${name}-${process.pid}` }));
  a = await openDatabase({ id: ID, path: join(dir, 'a.db'), transport: transports[0]! });
  b = await openDatabase({ id: ID, path: join(dir, 'b.db'), transport: transports[1]! });
  await a.whenSynced({ minPeers: 1, timeoutMs: 30_000 });
  await goodPairWorks('start');
}, 60_000);

afterAll(async () => {
  await a?.close().catch(() => undefined);
  await b?.close().catch(() => undefined);
  for (const t of transports) await t.disconnect().catch(() => undefined);
  await relay?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('fuzzing a live relay process over real sockets', () => {
  it('WebSocket clients sending random frame sequences: a known close code or normal handling; the relay answers and the good pair keeps syncing', async () => {
    const rssBefore = relay.memory().rss;
    const closes = new Map<string, number>();
    let cases = 0;
    let answered = 0;
    let mailboxReplies = 0;
    const typeByte = fc.constantFrom(...Object.values(FrameType), ...Object.values(MailboxFrameType), 0x00, 0x0b, 0x7f, 0xff);
    const small = fc.integer({ min: 0, max: 4 });
    const frame = fc.oneof(
      bytes(64),
      fc.tuple(typeByte, bytes(48)).map(([t, rest]) => Uint8Array.from([t, ...rest])),
      fc.constantFrom(FrameType.JOIN, FrameType.LEAVE, FrameType.ANNOUNCE).chain((t) =>
        fc.oneof(fc.constant(TOPIC), bytes(40)).map((topic) => (topic.length === 32 ? encodeTopicFrame(t, topic) : Uint8Array.from([t, ...topic]))),
      ),
      fc.tuple(fc.constantFrom(FrameType.SEND, FrameType.BROADCAST, FrameType.CLOSE_PEER), small, small, bytes(300)).map(([t, topicId, to, payload]) =>
        encodeDataFrame(t, topicId, to, t === FrameType.CLOSE_PEER ? undefined : payload),
      ),
      fc.tuple(small, small, fc.nat()).map(([topicId, to, credit]) => encodeWindow(topicId, to, credit >>> 0)),
      fc.tuple(bytes(70), fc.option(bytes(300)), fc.option(bytes(40))).map(([id, token, key]) => encodeHello(id, token, key)),
      fc.string({ maxLength: 20 }).map((s) => s as string | Uint8Array),
      // Mailbox requests with random fields: reads, payload pieces, writes with random headers.
      fc.tuple(fc.nat(), fc.oneof(fc.constant(new Uint8Array(32)), bytes(32).map((m) => Uint8Array.from({ length: 32 }, (_, i) => m[i] ?? 0))), fc.nat(1000)).map(([id, mailbox, after]) =>
        encodeMailboxRead(id % 4, mailbox, after),
      ),
      fc.tuple(fc.nat(3), fc.nat(5000), fc.uint8Array({ minLength: 1, maxLength: 200 })).map(([id, offset, piece]) => encodeMailboxPut(id, offset, piece)),
      fc.tuple(fc.nat(3), bytes(32), bytes(MAILBOX_HEADER_BYTES), bytes(200)).map(([id, mailbox, header, tail]) =>
        encodeMailboxWrite(id, Uint8Array.from({ length: 32 }, (_, i) => mailbox[i] ?? 0), Uint8Array.from({ length: MAILBOX_HEADER_BYTES }, (_, i) => header[i] ?? 0), tail),
      ),
    );
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(frame, { maxLength: 10 }), async (hello, frames) => {
        cases++;
        const client = await RawClient.open(relay.url, { hello, peerId: `fuzz-${cases}`, sessionKey: randomBytes(16) });
        let closed: { code: number } | null = null;
        void client.closed.then((c) => (closed = c));
        try {
          for (const f of frames) {
            if (closed !== null) break;
            if (typeof f === 'string') client.ws.send(f);
            else client.send(f);
          }
          // The relay has handled everything before this PING once its PONG (or a close) arrives.
          const nonce = cases;
          client.send(encodePing(FrameType.PING, nonce));
          const outcome = await withTimeout(
            Promise.race([client.next(FrameType.PONG).then(() => 'pong' as const), client.closed.then(() => 'closed' as const)]),
            15_000,
            `case ${cases}: relay neither answered PING nor closed`,
          );
          mailboxReplies += client.received.filter((f) => f[0] === MailboxFrameType.MB_DATA || f[0] === MailboxFrameType.MB_RESULT).length;
          if (outcome === 'pong') answered++;
          else {
            const { code } = await client.closed;
            const name = closeCodeName(code);
            expect(name, `case ${cases}: close code ${code} is not one of CloseCode`).toBeDefined();
            closes.set(name!, (closes.get(name!) ?? 0) + 1);
          }
        } finally {
          client.close();
          await client.closed;
        }
      }),
      { numRuns: WS_RUNS, seed: SEED, endOnFailure: true },
    );
    console.log(`live relay, WebSocket frame sequences: ${cases} cases, ${answered} answered PING, ${mailboxReplies} mailbox replies, closes ${JSON.stringify(Object.fromEntries(closes))}`);
    expect(relay.child.exitCode).toBeNull();
    expect(answered).toBeGreaterThan(0);
    expect(mailboxReplies).toBeGreaterThan(0);
    expect(closes.get('HELLO_REQUIRED') ?? 0).toBeGreaterThan(0);
    expect((closes.get('MALFORMED_FRAME') ?? 0) + (closes.get('UNKNOWN_FRAME_TYPE') ?? 0)).toBeGreaterThan(0);
    await goodPairWorks('ws');
    // Every fuzz client is released: only the good pair remains (bounded wait for the closes).
    const deadline = Date.now() + 15_000;
    while ((await healthz()).connections !== 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect((await healthz()).connections).toBe(2);
    const { rss, peak } = relay.memory();
    console.log(`relay RSS before ${(rssBefore / MiB).toFixed(0)} MiB, after ${(rss / MiB).toFixed(0)} MiB, peak ${(peak / MiB).toFixed(0)} MiB`);
    expect(rss).toBeLessThan(rssBefore + 64 * MiB);
  }, 180_000);

  it('invalid WebSocket framing after a real upgrade, and random bytes instead of HTTP: the relay closes the socket and keeps serving', async () => {
    const { port } = relay;
    let upgraded = 0;
    let httpCases = 0;
    /** Opens a TCP socket, writes `head` (and `body` once `head` was answered), resolves when the relay closed it. */
    const exchange = (head: Uint8Array | string, body: Uint8Array | null): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket: Socket = netConnect(port, '127.0.0.1');
        let answer = '';
        let sentBody = false;
        const timer = setTimeout(() => {
          socket.destroy();
          reject(new Error(`relay did not close the socket within 20 s; it answered: ${answer.slice(0, 200)}`));
        }, 20_000);
        socket.on('error', () => undefined);
        socket.on('connect', () => (body === null ? socket.end(head) : socket.write(head)));
        socket.on('data', (d: Buffer) => {
          answer += d.toString('latin1');
          if (body !== null && !sentBody && answer.includes('\r\n\r\n')) {
            sentBody = true;
            if (answer.startsWith('HTTP/1.1 101')) upgraded++;
            // Random bytes as WebSocket frames, then our side ends: the relay must close too.
            socket.end(body);
          }
        });
        socket.on('close', () => {
          clearTimeout(timer);
          resolve(answer);
        });
      });
    const upgrade = (): string =>
      `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 400 }), async (garbage) => {
        const answer = await exchange(upgrade(), garbage);
        expect(answer.startsWith('HTTP/1.1 101')).toBe(true);
      }),
      { numRuns: UPGRADE_RUNS, seed: SEED + 1, endOnFailure: true },
    );
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 400 }), async (garbage) => {
        httpCases++;
        const answer = await exchange(garbage, null);
        // Either an HTTP error status or a plain close; never a successful upgrade.
        if (answer.length > 0) expect(answer).toMatch(/^HTTP\/1\.1 [45]\d\d /);
      }),
      { numRuns: HTTP_RUNS, seed: SEED + 2, endOnFailure: true },
    );
    console.log(`live relay, raw TCP: ${upgraded} upgraded sockets with invalid WebSocket framing, ${httpCases} non-HTTP byte streams`);
    expect(upgraded).toBe(UPGRADE_RUNS);
    expect(relay.child.exitCode).toBeNull();
    await goodPairWorks('tcp');
    expect(CloseCode.MALFORMED_FRAME).toBe(4000);
  }, 120_000);
});
