// A key holder that repeats sync step 1 (an empty state vector: "send me everything") faster than
// the link drains: A must not queue a whole-document diff per request (before: 200 requests
// against a ~1 MiB document queued ~200 MiB of answers). A answers every request id exactly once,
// the held ones together after the answer in flight is sent: one full diff, the rest empty.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { MemoryHub, MemoryTransport, deriveTopic } from '@rhizome/core';
import { openDatabase, type Database } from '@rhizome/sync';
import { FrameSealer, keyMaterial } from '../packages/sync/src/seal.js';
import { MSG_SYNC_STEP2, Reassembler, decodeMessage, encodeStep1, toFrames } from '../packages/sync/src/wire.js';
import { connectionTo } from './sync-helpers.js';

const MiB = 1024 * 1024;
const ID = `step1-flood-${process.pid}`;
const TOPIC = deriveTopic(ID);
const REQUESTS = 200;
const NODES = 2_000;

const hub = new MemoryHub(`step1-flood-${process.pid}`);
let dir: string;
let a: Database;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rhizome-step1-flood-'));
  a = await openDatabase({ id: ID, path: join(dir, 'a.db'), transport: new MemoryTransport({ hub, peerId: 'a' }) });
  a.putMany(Array.from({ length: NODES }, (_, i) => [`n${i}`, { text: `${i} `.padEnd(500, 'x') }] as const));
  await a.flush();
});

afterAll(async () => {
  await a?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a peer flooding sync step 1', () => {
  it('gets every request answered once, with one whole-document diff, not one per request', async () => {
    const docBytes = Y.encodeStateAsUpdate(a.doc).length;
    expect(docBytes).toBeGreaterThan(MiB);
    const sealer = new FrameSealer(keyMaterial(ID), TOPIC);
    const evil = new MemoryTransport({ hub, peerId: 'evil' });
    const ac = new AbortController();
    try {
      const toA = await connectionTo(evil, TOPIC, 'a', ac.signal);
      const ids = Array.from({ length: REQUESTS }, (_, i) => {
        const id = new Uint8Array(16);
        id[0] = i >> 8;
        id[1] = i & 0xff;
        id[15] = 0xee;
        return id;
      });
      for (const id of ids) for (const f of toFrames(encodeStep1(id, new Uint8Array([0])), 1 << 20)) await toA.send(sealer.seal(f));

      // Read A's answers: stop as soon as they exceed what one diff per request would not (bounded).
      const answered = new Map<string, number>();
      let updateBytes = 0;
      const reassembler = new Reassembler(64 * MiB);
      const readDeadline = Date.now() + 60_000;
      while (answered.size < REQUESTS && updateBytes <= 3 * docBytes && Date.now() < readDeadline) {
        const frame = await Promise.race([toA.receive(), sleep(Math.max(1, readDeadline - Date.now())).then(() => undefined)]);
        if (frame === undefined) break;
        if (frame === null) throw new Error('A closed the session');
        const r = reassembler.push(sealer.open(frame));
        if (r.kind !== 'message' || r.message[0] !== MSG_SYNC_STEP2) continue;
        const m = decodeMessage(r.message);
        if (m.type !== MSG_SYNC_STEP2) continue;
        const key = Buffer.from(m.requestId).toString('hex');
        answered.set(key, (answered.get(key) ?? 0) + 1);
        updateBytes += m.update.length;
      }
      expect(updateBytes).toBeLessThanOrEqual(3 * docBytes);
      expect(answered.size).toBe(REQUESTS);
      expect([...answered.values()].every((n) => n === 1)).toBe(true);
      // A is still in one piece: its data unchanged.
      expect(a.size).toBe(NODES);
    } finally {
      ac.abort();
      await evil.disconnect();
    }
  });
});
