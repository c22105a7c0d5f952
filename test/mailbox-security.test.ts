// The relay mailbox against what it must withstand: a relay that reads everything it stores and
// carries (it finds no plaintext and no id), a stranger who knows the topic and the mailbox
// address but not the key, a flooding client against the operator's bounds, a damaged file.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { createTransport, deriveTopic, generateDatabaseId, MailboxOp, type MailboxAccess, type SyncEvent } from '@rhizome/core';
import { createMailboxService, createRelayServer, RelayCore, type MailboxService, type RelayServer } from '@rhizome/relay';
import { recordingSocket, type Recording } from '@rhizome/relay/testing';
import { MailboxKeys, openDatabase, type Database } from '@rhizome/sync';
import { RelayTransport } from '@rhizome/transport-relay';
import { collectEvents } from './sync-helpers.js';

const WAIT = 20_000;
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rhizome-mailbox-sec-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = (name: string): string => join(dir, `${n++}-${name}`);

function open(id: string, relayUrl: string, path = file('replica.db')): Promise<Database> {
  return openDatabase({ id, path, transport: createTransport({ mode: 'relay', relayUrl, timeoutMs: WAIT }) });
}

function codes(events: SyncEvent[]): string[] {
  return events.flatMap((e) => (e.type === 'error' ? [(e.error as Error & { code?: string }).code ?? e.error.message] : []));
}

/** A raw mailbox client: a relay transport that joins nothing, used only for its mailbox. */
async function rawMailbox(url: string): Promise<{ access: MailboxAccess; close: () => Promise<void> }> {
  const t = new RelayTransport({ url, timeoutMs: WAIT });
  const access = t.mailbox!;
  const offered = new Promise<void>((resolve) => access.onOffer(() => resolve()));
  await t.announce(deriveTopic(generateDatabaseId())); // any session will do
  await offered;
  return { access, close: () => t.disconnect() };
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (error) {
    const e = error as { code?: string; statusName?: string };
    return e.code === 'ERR_MAILBOX_REFUSED' ? `${e.code}:${e.statusName}` : (e.code ?? String(error));
  }
}

describe('what a relay with a mailbox sees and stores', () => {
  const recording: Recording = { received: [], sent: [] };
  let server: Server;
  let core: RelayCore;
  let mailbox: MailboxService;
  let url: string;
  const mailboxFile = join(tmpdir(), `rhizome-scan-${process.pid}-${Date.now()}.db`);

  beforeAll(async () => {
    mailbox = await createMailboxService(mailboxFile);
    core = new RelayCore({ mailbox });
    const wss = new WebSocketServer({ noServer: true, maxPayload: core.options.maxFrameSize, perMessageDeflate: false });
    server = createServer();
    server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => core.attach(recordingSocket(ws, recording), { ip: '127.0.0.1' })));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await core.close();
    await new Promise<void>((r) => server.close(() => r()));
    await mailbox.close();
    for (const f of [mailboxFile, `${mailboxFile}-wal`, `${mailboxFile}-shm`]) rmSync(f, { force: true });
  });

  it('neither a marker written into a node nor the database id, in the file or any byte in or out', async () => {
    const id = generateDatabaseId();
    const marker = `MAILBOX-MARKER-${generateDatabaseId()}`;
    const a = await open(id, url);
    a.put('secret', { body: marker });
    for (let i = 0; i < 50; i++) a.put(`n${i}`, { body: `${marker}-${i}` });
    await a.mailbox!.whenIdle({ timeoutMs: WAIT });
    await a.close();
    const b = await open(id, url);
    await b.mailbox!.whenIdle({ timeoutMs: WAIT });
    expect(b.get('secret')).toEqual({ body: marker });
    await b.close();

    const stored = Buffer.concat([mailboxFile, `${mailboxFile}-wal`].filter((f) => existsSync(f)).map((f) => readFileSync(f)));
    const traffic = [...recording.received, ...recording.sent].map((m) => Buffer.from(m.buffer, m.byteOffset, m.byteLength));
    const inFile = (needle: Uint8Array): boolean => stored.indexOf(Buffer.from(needle)) >= 0;
    const inTraffic = (needle: Uint8Array): boolean => traffic.some((m) => m.indexOf(Buffer.from(needle)) >= 0);
    // The controls: the scans see what the relay stored and carried (a record's sealed bytes).
    const keys = new MailboxKeys(new TextEncoder().encode(id), deriveTopic(id));
    const { access, close } = await rawMailbox(url);
    const read = await access.read(keys.publicKey, 0);
    await close();
    expect(read.records.length).toBeGreaterThan(0);
    const sealedSample = read.records[0]!.payload.subarray(100, 164);
    expect(inFile(sealedSample)).toBe(true);
    expect(inTraffic(sealedSample)).toBe(true);
    expect(inFile(keys.publicKey)).toBe(true); // the address is public to the relay, by design

    for (const needle of [marker, id, 'secret']) {
      const bytes = new TextEncoder().encode(needle);
      expect(inFile(bytes), `${needle} in the mailbox file`).toBe(false);
      expect(inTraffic(bytes), `${needle} in relay traffic`).toBe(false);
    }
  }, 60_000);
});

describe('a stranger who knows the topic and the mailbox address, but not the key', () => {
  let relay: RelayServer;
  beforeAll(async () => {
    relay = await createRelayServer({ port: 0, host: '127.0.0.1', mailbox: file('mailbox.db') });
  });
  afterAll(() => relay.close());

  it('cannot deposit, truncate, replace the snapshot, replay or alter a record; the data stays whole', async () => {
    const id = generateDatabaseId();
    const a = await open(id, relay.url);
    a.doc.transact(() => {
      for (let i = 0; i < 100; i++) a.put(`n${i}`, { i });
    });
    await a.mailbox!.whenIdle({ timeoutMs: WAIT });
    a.put('later', { v: 1 });
    await a.mailbox!.whenIdle({ timeoutMs: WAIT });
    await a.close();

    const victim = new MailboxKeys(new TextEncoder().encode(id), deriveTopic(id)).publicKey;
    const stranger = new MailboxKeys(new TextEncoder().encode('not the key'), deriveTopic(id));
    const { access, close } = await rawMailbox(relay.url);
    try {
      const before = await access.read(victim, 0);
      const head = before.records.at(-1)!;
      const headCounter = Number(Buffer.from(head.header.subarray(1, 9)).readBigUInt64BE());
      expect(before.records.length).toBe(2); // the snapshot and one deposit
      const junk = stranger.seal(new Uint8Array([1, 2, 3]));
      const signed = (op: 1 | 2 | 3, payload: Uint8Array) => stranger.header(op, headCounter + 1, op === MailboxOp.DEPOSIT ? headCounter : headCounter, payload);
      expect(await refusal(access.write(victim, signed(MailboxOp.DEPOSIT, junk), junk))).toBe('ERR_MAILBOX_REFUSED:BAD_SIGNATURE');
      expect(await refusal(access.write(victim, signed(MailboxOp.TRUNCATE, new Uint8Array(0)), new Uint8Array(0)))).toBe('ERR_MAILBOX_REFUSED:BAD_SIGNATURE');
      expect(await refusal(access.write(victim, signed(MailboxOp.SNAPSHOT, junk), junk))).toBe('ERR_MAILBOX_REFUSED:BAD_SIGNATURE');
      // Replays of the legitimate records, byte for byte: their counters are not fresh.
      for (const r of before.records) expect(await refusal(access.write(victim, r.header, r.payload))).toBe('ERR_MAILBOX_REFUSED:STALE');
      // A legitimate header with another payload: the signed digest does not match.
      const altered = head.payload.slice();
      altered[altered.length - 1] = altered[altered.length - 1]! ^ 1;
      expect(await refusal(access.write(victim, head.header, altered))).toBe('ERR_MAILBOX_REFUSED:BAD_RECORD');
      // A header whose counter was bumped (to look fresh) no longer verifies.
      const bumped = head.header.slice();
      bumped[8] = (bumped[8]! + 1) & 0xff;
      expect(await refusal(access.write(victim, bumped, head.payload))).toBe('ERR_MAILBOX_REFUSED:BAD_SIGNATURE');
      const after = await access.read(victim, 0);
      expect(after.records.map((r) => Buffer.from(r.header).toString('hex'))).toEqual(before.records.map((r) => Buffer.from(r.header).toString('hex')));
    } finally {
      await close();
    }
    const b = await open(id, relay.url);
    const events = collectEvents(b);
    await b.mailbox!.whenIdle({ timeoutMs: WAIT });
    events.stop();
    expect(b.size).toBe(101);
    expect(b.get('later')).toEqual({ v: 1 });
    expect(codes(events.events)).toEqual([]);
    await b.close();
  }, 60_000);
});

describe('operator bounds', () => {
  it('a full mailbox refuses; the writer reports ERR_MAILBOX_FULL, compacts and carries on', async () => {
    const relay = await createRelayServer({ port: 0, host: '127.0.0.1', mailbox: { path: file('small.db'), maxMailboxBytes: 256 * 1024 } });
    try {
      const id = generateDatabaseId();
      const a = await open(id, relay.url);
      const events = collectEvents(a);
      const write = (width: number): void =>
        a.doc.transact(() => {
          for (let i = 0; i < 400; i++) a.put(`n${i}`, { text: `${i}-${'x'.repeat(width)}` });
        });
      write(200); // ~100 KB: the base snapshot
      await a.mailbox!.whenIdle({ timeoutMs: WAIT });
      const before = a.mailbox!.status();
      expect(before.usedEntries).toBe(1);
      // Every node rewritten, larger: a ~190 KB deposit on top of the ~100 KB base passes
      // 256 KiB and is refused FULL; the snapshot that replaces both (~190 KB) fits.
      write(450);
      await a.mailbox!.whenIdle({ timeoutMs: WAIT });
      events.stop();
      expect(codes(events.events)).toContain('ERR_MAILBOX_FULL');
      const status = a.mailbox!.status();
      expect(status.snapshots).toBe(before.snapshots + 1);
      expect(status.deposits).toBe(before.deposits);
      expect(status.usedEntries).toBe(1);
      expect(status.usedBytes).toBeLessThanOrEqual(256 * 1024);
      a.put('after', { ok: true }); // and carries on with deposits
      await a.mailbox!.whenIdle({ timeoutMs: WAIT });
      expect(a.mailbox!.status().usedEntries).toBe(2);
      await a.close();
      const b = await open(id, relay.url);
      await b.mailbox!.whenIdle({ timeoutMs: WAIT });
      expect(b.size).toBe(401);
      expect(b.get('n7')).toEqual({ text: `7-${'x'.repeat(450)}` });
      await b.close();
    } finally {
      await relay.close();
    }
  }, 60_000);

  it('a flooding client with many keys cannot push the disk past the configured bound', async () => {
    const path = file('flood.db');
    const limits = { maxMailboxBytes: 64 * 1024, maxEntries: 50, maxMailboxes: 8, writeBurst: 1000, writesPerMinute: 60_000 };
    const relay = await createRelayServer({ port: 0, host: '127.0.0.1', mailbox: { path, ...limits } });
    const seen = new Map<string, number>();
    try {
      const { access, close } = await rawMailbox(relay.url);
      try {
        const topic = deriveTopic('flood');
        for (let k = 0; k < 30; k++) {
          const keys = new MailboxKeys(new TextEncoder().encode(`flood-key-${k}`), topic);
          let head = 0;
          for (let w = 0; w < 40; w++) {
            const payload = keys.seal(new Uint8Array(6000).fill(w));
            const op = head === 0 ? MailboxOp.SNAPSHOT : MailboxOp.DEPOSIT;
            const outcome = await refusal(access.write(keys.publicKey, keys.header(op, head + 1, head, payload), payload).then((r) => (head = r.head)));
            const key = outcome.startsWith('ERR') ? outcome : 'accepted';
            seen.set(key, (seen.get(key) ?? 0) + 1);
            if (outcome !== 'accepted' && head === 0) break; // the relay is full of mailboxes: this key never gets one
          }
        }
      } finally {
        await close();
      }
      expect(seen.get('ERR_MAILBOX_FULL')).toBeGreaterThan(0);
      expect(seen.get('ERR_MAILBOX_REFUSED:RELAY_FULL')).toBeGreaterThan(0);
      const stats = relay.stats().mailbox!;
      expect(stats.refused.FULL).toBe(seen.get('ERR_MAILBOX_FULL'));
      const onDisk = [path, `${path}-wal`, `${path}-shm`].reduce((sum, f) => sum + (statSync(f, { throwIfNoEntry: false })?.size ?? 0), 0);
      // Records at most maxMailboxes × maxMailboxBytes; plus the WAL (checkpointed every 1 MiB,
      // truncated to 1 MiB), its index, and SQLite's own pages.
      const bound = limits.maxMailboxes * limits.maxMailboxBytes + 2 * 1024 * 1024 + 256 * 1024;
      expect(onDisk).toBeLessThan(bound);
      const attempted = 30 * 40 * 6000;
      expect(attempted).toBeGreaterThan(2 * bound); // the flood tried far more than the bound
    } finally {
      await relay.close();
    }
  }, 60_000);
});

describe('a damaged mailbox file', () => {
  function sha(path: string): string {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  }

  it('is refused at start with ERR_STORE_CORRUPT and a clear message, and left exactly as it was', async () => {
    const path = file('damaged.db');
    const relay = await createRelayServer({ port: 0, host: '127.0.0.1', mailbox: path });
    const id = generateDatabaseId();
    const a = await open(id, relay.url);
    a.doc.transact(() => {
      for (let i = 0; i < 2000; i++) a.put(`n${i}`, { text: `node ${i} ${'y'.repeat(100)}` });
    });
    await a.mailbox!.whenIdle({ timeoutMs: WAIT });
    await a.close();
    await relay.close();
    const bytes = readFileSync(path);
    expect(bytes.length).toBeGreaterThan(64 * 1024);
    // Garbage over pages in the middle of the file (b-tree and overflow pages of the records).
    for (let o = 8192; o < bytes.length - 4096; o += 16384) bytes.fill(0xa5, o, o + 512);
    writeFileSync(path, bytes);
    const digest = sha(path);
    await expect(createRelayServer({ port: 0, host: '127.0.0.1', mailbox: path })).rejects.toMatchObject({
      code: 'ERR_STORE_CORRUPT',
      message: expect.stringMatching(/damaged mailbox file.*refusing to start/),
    });
    expect(sha(path)).toBe(digest);

    const text = file('not-sqlite.db');
    writeFileSync(text, 'these are not the bytes of an SQLite file\n'.repeat(10));
    const textDigest = sha(text);
    await expect(createRelayServer({ port: 0, host: '127.0.0.1', mailbox: text })).rejects.toMatchObject({
      code: 'ERR_STORE_CORRUPT',
      message: expect.stringMatching(/not a relay mailbox file/),
    });
    expect(sha(text)).toBe(textDigest);
  }, 60_000);
});
