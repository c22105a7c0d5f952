// The relay's frames and the mailbox's records byte by byte as ARCHITECTURE.md writes them
// (§ Relay › Frames, § Mailbox). The tables are read from the document (test/doc-layout.ts), so
// the layouts below are the document's, not the code's constants:
// - every encoder in @rhizome/transport-relay/protocol writes exactly the documented bytes;
// - a real relay (port 0, with a mailbox file) answers frames built from the document with frames
//   that read exactly by the document, field for field;
// - a mailbox record whose keys, header, signature and sealed payload are made from the
//   documented derivations (literal labels, @noble primitives) is accepted by the relay, read
//   back in the documented reply stream, and equals what the client's MailboxKeys make.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveTopic } from '@rhizome/core';
import { within } from '@rhizome/core/testing';
import { DEFAULT_LIMITS, DEFAULT_MAILBOX_LIMITS, createRelayServer, type RelayServer } from '@rhizome/relay';
import { RawClient } from '@rhizome/relay/testing';
import { MailboxKeys, keyMaterial } from '@rhizome/sync';
import * as protocol from '@rhizome/transport-relay/protocol';
import { build, fixedLength, frameRows, parse, section, type FrameRow, type Values } from './doc-layout.js';

const WAIT = 10_000;
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

const relayFrames = section('### Frames', section('## Relay'));
const mailboxSection = section('### Mailbox (offline catch-up)');
const rows = new Map<string, FrameRow>([...frameRows(relayFrames), ...frameRows(mailboxSection)].map((r) => [r.name, r]));
const row = (name: string): FrameRow => {
  const r = rows.get(name);
  if (!r) throw new Error(`ARCHITECTURE.md has no frame ${name}`);
  return r;
};

describe('the documented tables', () => {
  it('name every frame type of the code, with the code type byte, a layout that starts with it, and a length that adds up', () => {
    const code = { ...protocol.FrameType, ...protocol.MailboxFrameType } as Record<string, number>;
    expect([...rows.keys()].sort()).toEqual(Object.keys(code).sort());
    for (const r of rows.values()) {
      expect(r.type, r.name).toBe(code[r.name]);
      expect(r.fields[0], r.name).toEqual({ kind: 'literal', value: r.type });
      if (r.length) expect(fixedLength(r.fields), `${r.name}: the length written after its layout`).toBe(r.length.fixed);
    }
  });

  it('the encoders write exactly the documented bytes', () => {
    const topic = deriveTopic('wire-doc');
    const key = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
    const header = Uint8Array.from({ length: 117 }, (_, i) => i);
    const address = Uint8Array.from({ length: 32 }, (_, i) => 255 - i);
    const cases: Array<[string, Values, Uint8Array]> = [
      ['HELLO', { version: 1, idLen: 6, id: 'peer-1', tokenLen: 3, token: 'tok', keyLen: 16, sessionKey: key }, protocol.encodeHello(utf8('peer-1'), utf8('tok'), key)],
      ['HELLO', { version: 1, idLen: 1, id: 'p', tokenLen: 0, token: '', keyLen: 0, sessionKey: '' }, protocol.encodeHello(utf8('p'), null)],
      ['JOIN', { topic }, protocol.encodeTopicFrame(protocol.FrameType.JOIN, topic)],
      ['LEAVE', { topic }, protocol.encodeTopicFrame(protocol.FrameType.LEAVE, topic)],
      ['ANNOUNCE', { topic }, protocol.encodeTopicFrame(protocol.FrameType.ANNOUNCE, topic)],
      ['LOOKUP', { requestId: 0x01020304, topic }, protocol.encodeLookup(0x01020304, topic)],
      ['SEND', { topicId: 7, to: 0xfffffffe, payload: 'hi' }, protocol.encodeDataFrame(protocol.FrameType.SEND, 7, 0xfffffffe, utf8('hi'))],
      ['BROADCAST', { topicId: 7, payload: 'all' }, protocol.encodeDataFrame(protocol.FrameType.BROADCAST, 7, 0, utf8('all'))],
      ['CLOSE_PEER', { topicId: 7, to: 9 }, protocol.encodeDataFrame(protocol.FrameType.CLOSE_PEER, 7, 9)],
      ['PING', { nonce: 0xdeadbeef }, protocol.encodePing(protocol.FrameType.PING, 0xdeadbeef)],
      ['WINDOW', { topicId: 7, to: 9, credit: 1 << 20 }, protocol.encodeWindow(7, 9, 1 << 20)],
      ['WELCOME', { version: 1, session: 42, maxFrameSize: (1 << 20) + 64 }, protocol.encodeWelcome(42, (1 << 20) + 64)],
      ['JOINED', { topicId: 3, topic }, protocol.encodeJoined(3, topic)],
      ['PEER_JOINED', { topicId: 3, session: 5, idLen: 4, id: 'abcd' }, protocol.encodePeerJoined(3, 5, utf8('abcd'))],
      ['PEER_LEFT', { topicId: 3, session: 5 }, protocol.encodeDataFrame(protocol.FrameType.PEER_LEFT, 3, 5)],
      ['DELIVER', { topicId: 3, from: 5, payload: 'x' }, protocol.encodeDataFrame(protocol.FrameType.DELIVER, 3, 5, utf8('x'))],
      ['PEER_CLOSED', { topicId: 3, from: 5 }, protocol.encodeDataFrame(protocol.FrameType.PEER_CLOSED, 3, 5)],
      [
        'PEERS',
        { requestId: 11, count: 2, entries: [{ session: 1, idLen: 1, id: 'a' }, { session: 2, idLen: 2, id: 'bb' }] },
        protocol.encodePeers(11, [{ session: 1, peerId: utf8('a') }, { session: 2, peerId: utf8('bb') }]),
      ],
      ['PEERS', { requestId: 11, count: 0, entries: [] }, protocol.encodePeers(11, [])],
      ['PONG', { nonce: 5 }, protocol.encodePing(protocol.FrameType.PONG, 5)],
      [
        'LIMITS',
        { flags: 1, maxFramesPerSecond: 5000, frameBurst: 20_000, maxBytesPerSecond: 16 << 20, byteBurst: 64 << 20 },
        protocol.encodeLimits({ maxFramesPerSecond: 5000, frameBurst: 20_000, maxBytesPerSecond: 16 << 20, byteBurst: 64 << 20 }, protocol.LIMITS_FLAG_WINDOW),
      ],
      ['ERROR', { error: 2, context: 3, message: 'full' }, protocol.encodeError(2, 3, 'full')],
      ['MB_READ', { requestId: 1, address, after: 2 ** 40 + 3 }, protocol.encodeMailboxRead(1, address, 2 ** 40 + 3)],
      ['MB_PUT', { requestId: 1, offset: 4096, bytes: 'piece' }, protocol.encodeMailboxPut(1, 4096, utf8('piece'))],
      ['MB_WRITE', { requestId: 1, address, header, tail: 'tail' }, protocol.encodeMailboxWrite(1, address, header, utf8('tail'))],
      ['MB_DATA', { requestId: 1, last: 1, bytes: 'data' }, protocol.encodeMailboxData(1, true, utf8('data'))],
      ['MB_RESULT', { requestId: 1, status: 2, head: 2 ** 33, usedBytes: 5000, usedEntries: 3 }, protocol.encodeMailboxResult(1, 2, 2 ** 33, 5000, 3)],
      [
        'MB_OFFER',
        { maxMailboxBytes: 32 << 20, maxEntries: 10_000, maxEntryBytes: 1 << 20, ttlSeconds: 2_592_000, writesPerMinute: 600 },
        protocol.encodeMailboxOffer({ maxMailboxBytes: 32 << 20, maxEntries: 10_000, maxEntryBytes: 1 << 20, ttlSeconds: 2_592_000, writesPerMinute: 600 }),
      ],
    ];
    for (const [name, values, encoded] of cases) {
      expect([...encoded], name).toEqual([...build(row(name), values)]);
      // And the documented layout reads the frame back, exactly.
      expect(parse(row(name), encoded), name).toMatchObject(Object.fromEntries(Object.entries(values).filter(([, v]) => typeof v === 'number')));
    }
    // Every frame type has a case, but WINDOW_UPDATE: the relay makes it by rewriting a WINDOW's
    // type and peer fields in place (no encoder); the live test below reads it.
    expect(new Set([...cases.map(([name]) => name), 'WINDOW_UPDATE'])).toEqual(new Set(rows.keys()));
  });
});

describe('the documented limits', () => {
  it('name every limit of the relay and of its mailbox', () => {
    const limits = section('### Limits and close codes', section('## Relay'));
    for (const name of Object.keys(DEFAULT_LIMITS)) expect(limits, `relay limit ${name}`).toContain(`\`${name}\``);
    for (const name of Object.keys(DEFAULT_MAILBOX_LIMITS)) expect(mailboxSection, `mailbox limit ${name}`).toContain(`\`${name}\``);
  });
});

describe('a relay speaks the documented frames', () => {
  let dir: string;
  let server: RelayServer;
  const clients: RawClient[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rhizome-wire-doc-'));
    server = await createRelayServer({ port: 0, host: '127.0.0.1', mailbox: join(dir, 'mailbox.db') });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A raw client that says HELLO as the document writes it; its WELCOME, LIMITS and MB_OFFER read by the document. */
  async function client(id: string): Promise<{ c: RawClient; session: number; welcome: Values; limits: Values; offer: Values }> {
    const c = await RawClient.open(server.url, { hello: false });
    clients.push(c);
    c.send(build(row('HELLO'), { version: 1, idLen: id.length, id, tokenLen: 0, token: '', keyLen: 16, sessionKey: new Uint8Array(16).fill(id.length) }));
    const welcome = parse(row('WELCOME'), await within(WAIT, 'WELCOME', c.next(row('WELCOME').type)));
    const limits = parse(row('LIMITS'), await within(WAIT, 'LIMITS', c.next(row('LIMITS').type)));
    const offer = parse(row('MB_OFFER'), await within(WAIT, 'MB_OFFER', c.next(row('MB_OFFER').type)));
    return { c, session: welcome.session as number, welcome, limits, offer };
  }
  const next = async (c: RawClient, name: string): Promise<Values> => parse(row(name), await within(WAIT, name, c.next(row(name).type)));

  it('session, pairing, data, flow control, probes, lookups, errors and leaving', async () => {
    const a = await client('doc-a');
    expect(a.welcome).toEqual({ version: 1, session: a.session, maxFrameSize: (1 << 20) + 64 });
    expect(a.limits).toEqual({ flags: 1, maxFramesPerSecond: 5000, frameBurst: 20_000, maxBytesPerSecond: 16 << 20, byteBurst: 64 << 20 });
    expect(a.offer).toMatchObject({ version: 1, maxMailboxBytes: 32 << 20, maxEntries: 10_000, maxEntryBytes: 32 << 20, ttlSeconds: 30 * 24 * 3600, writesPerMinute: 600 });
    const b = await client('doc-b');
    const topic = deriveTopic('wire-doc-live');

    a.c.send(build(row('JOIN'), { topic }));
    const joinedA = await next(a.c, 'JOINED');
    expect(joinedA.topic).toEqual(topic);
    const topicId = joinedA.topicId as number;
    b.c.send(build(row('JOIN'), { topic }));
    expect(await next(b.c, 'JOINED')).toEqual({ topicId, topic });
    expect(await next(a.c, 'PEER_JOINED')).toEqual({ topicId, session: b.session, idLen: 5, id: utf8('doc-b') });
    expect(await next(b.c, 'PEER_JOINED')).toEqual({ topicId, session: a.session, idLen: 5, id: utf8('doc-a') });

    a.c.send(build(row('WINDOW'), { topicId, to: b.session, credit: 0 }));
    expect(await next(b.c, 'WINDOW_UPDATE')).toEqual({ topicId, from: a.session, credit: 0 });
    a.c.send(build(row('SEND'), { topicId, to: b.session, payload: 'sealed bytes' }));
    expect(await next(b.c, 'DELIVER')).toEqual({ topicId, from: a.session, payload: utf8('sealed bytes') });
    b.c.send(build(row('BROADCAST'), { topicId, payload: 'to all' }));
    expect(await next(a.c, 'DELIVER')).toEqual({ topicId, from: b.session, payload: utf8('to all') });
    a.c.send(build(row('PING'), { nonce: 0xdeadbeef }));
    expect(await next(a.c, 'PONG')).toEqual({ nonce: 0xdeadbeef });

    const c = await client('doc-c');
    c.c.send(build(row('ANNOUNCE'), { topic }));
    expect(await next(c.c, 'JOINED')).toEqual({ topicId, topic });
    c.c.send(build(row('LOOKUP'), { requestId: 77, topic }));
    const peers = await next(c.c, 'PEERS');
    expect(peers).toMatchObject({ requestId: 77, count: 2 });
    expect((peers.entries as Values[]).map((e) => [e.session, new TextDecoder().decode(e.id as Uint8Array)]).sort()).toEqual(
      [[a.session, 'doc-a'], [b.session, 'doc-b']].sort(),
    );

    a.c.send(build(row('SEND'), { topicId: topicId + 1000, to: b.session, payload: 'x' }));
    expect(await next(a.c, 'ERROR')).toMatchObject({ error: 1, context: topicId + 1000 });

    a.c.send(build(row('CLOSE_PEER'), { topicId, to: b.session }));
    expect(await next(b.c, 'PEER_CLOSED')).toEqual({ topicId, from: a.session });
    b.c.send(build(row('LEAVE'), { topic }));
    expect(await next(a.c, 'PEER_LEFT')).toEqual({ topicId, session: b.session });
  });

  it('a mailbox record made from the documented keys, header and seal is stored and read back in the documented stream', async () => {
    const { c } = await client('doc-mailbox');
    const id = 'wire-doc-mailbox-database-id';
    const topic = deriveTopic(id);
    // § Mailbox › Keys, from the document's labels.
    const material = utf8(id);
    const seed = hkdf(sha256, material, utf8('rhizome/v1/mailbox-sign'), topic, 32);
    const address = ed25519.getPublicKey(seed);
    const payloadKey = hkdf(sha256, material, utf8('rhizome/v1/mailbox-seal'), topic, 32);
    const aad = concat(utf8('rhizome/v1/mailbox'), Uint8Array.of(0x01), topic);
    const keys = new MailboxKeys(keyMaterial(id), topic);
    expect([...keys.publicKey]).toEqual([...address]);

    /** A sealed payload: `0x01 ‖ nonce ‖ ciphertext ‖ tag` of an UPDATES message (`0x03 ‖ varUint n ‖ n × varUint8Array`). */
    const seal = (update: Uint8Array, nonceByte: number): Uint8Array => {
      expect(update.length).toBeLessThan(128);
      const plaintext = concat(Uint8Array.of(0x03, 1, update.length), update);
      const nonce = new Uint8Array(24).fill(nonceByte);
      const sealed = concat(Uint8Array.of(0x01), nonce, xchacha20poly1305(payloadKey, nonce, aad).encrypt(plaintext));
      expect(sealed.length).toBe(plaintext.length + 41);
      expect([...keys.open(sealed)]).toEqual([...plaintext]);
      return sealed;
    };
    /** The 117-byte header by the offsets table, signed over `'rhizome/v1/mailbox-op' ‖ address ‖ header[0..53)`. */
    const header = (op: number, counter: number, prev: number, payload: Uint8Array): Uint8Array => {
      const h = new Uint8Array(117);
      const view = new DataView(h.buffer);
      h[0] = op;
      view.setBigUint64(1, BigInt(counter));
      view.setBigUint64(9, BigInt(prev));
      view.setUint32(17, payload.length);
      h.set(sha256(payload), 21);
      h.set(ed25519.sign(concat(utf8('rhizome/v1/mailbox-op'), address, h.subarray(0, 53)), seed), 53);
      // Ed25519 signatures are deterministic: the client's MailboxKeys make the same bytes.
      expect([...keys.header(op as 1 | 2 | 3, counter, prev, payload)]).toEqual([...h]);
      return h;
    };

    // A SNAPSHOT (op 2) as the base, counter 1 on head 0, in one MB_WRITE.
    const snapshot = seal(Uint8Array.of(0, 0), 1);
    const h1 = header(2, 1, 0, snapshot);
    c.send(build(row('MB_WRITE'), { requestId: 1, address, header: h1, tail: snapshot }));
    const used1 = 117 + snapshot.length;
    expect(await next(c, 'MB_RESULT')).toEqual({ requestId: 1, status: 0, head: 1, usedBytes: used1, usedEntries: 1 });

    // A DEPOSIT (op 1), counter 2 on head 1, its payload in an MB_PUT piece and the MB_WRITE's tail.
    const deposit = seal(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8), 2);
    const h2 = header(1, 2, 1, deposit);
    c.send(build(row('MB_PUT'), { requestId: 2, offset: 0, bytes: deposit.subarray(0, 20) }));
    c.send(build(row('MB_WRITE'), { requestId: 2, address, header: h2, tail: deposit.subarray(20) }));
    const used2 = used1 + 117 + deposit.length;
    expect(await next(c, 'MB_RESULT')).toEqual({ requestId: 2, status: 0, head: 2, usedBytes: used2, usedEntries: 2 });
    // Replayed: STALE (2), with the current head.
    c.send(build(row('MB_WRITE'), { requestId: 3, address, header: h2, tail: deposit }));
    expect(await next(c, 'MB_RESULT')).toMatchObject({ requestId: 3, status: 2, head: 2 });

    // MB_READ from 0: MB_DATA pieces until `last` = 1, concatenated into the reply stream
    // `[status:1][usedBytes:8][usedEntries:4][hasHead:1][head header:117][count:4]` then count × `[header:117][payload:length]`.
    c.send(build(row('MB_READ'), { requestId: 4, address, after: 0 }));
    const pieces: Uint8Array[] = [];
    for (;;) {
      const data = await next(c, 'MB_DATA');
      expect(data.requestId).toBe(4);
      pieces.push(data.bytes as Uint8Array);
      if (data.last === 1) break;
      expect(data.last).toBe(0);
    }
    const stream = concat(...pieces);
    const view = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
    expect(stream[0]).toBe(0);
    expect(Number(view.getBigUint64(1))).toBe(used2);
    expect(view.getUint32(9)).toBe(2);
    expect(stream[13]).toBe(1);
    expect([...stream.subarray(14, 14 + 117)]).toEqual([...h2]);
    expect(view.getUint32(131)).toBe(2);
    expect([...stream.subarray(135)]).toEqual([...concat(h1, snapshot, h2, deposit)]);
  });
});

