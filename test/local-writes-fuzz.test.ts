// Local writes (each local transaction's update encoded by Rhizome in JavaScript, sync/src/doc-updates.ts)
// mixed with concurrent remote updates, small and large (both paths of sync/src/apply.ts, and Yjs's
// own applyUpdate), and an app observer that writes when a remote change arrives: everything the
// doc's 'update' and 'updateV2' listeners hear rebuilds the document, one update per changing
// transaction, and SQLite holds the same document. Seeded.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as Y from 'yjs';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '@rhizome/sync';
import type { JsonValue } from '@rhizome/core';
import { prng } from './prng.js';
import { applyRemoteUpdates } from '../packages/sync/src/apply.js';

const dir = mkdtempSync(join(tmpdir(), 'rhizome-local-writes-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const VALUES: JsonValue[] = ['', 'a', 'ünï', '🌱 x', 'x'.repeat(127), 'y'.repeat(128), 'z'.repeat(3000), 0, -1, 2 ** 31, 1.5, -0.1, 1e300, true, false, null, [1, 'a', null], { a: { b: [1, 2] }, 'ü': 'é' }];
const FIELDS = ['title', 'n', 'done', 'ü', 'a\u0000b', ''];
const macrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function randomData(random: () => number): Record<string, JsonValue> {
  const data: Record<string, JsonValue> = {};
  const k = 1 + Math.floor(random() * 3);
  for (let i = 0; i < k; i++) data[FIELDS[Math.floor(random() * FIELDS.length)]!] = VALUES[Math.floor(random() * VALUES.length)]!;
  return data;
}

describe('local puts, deletes, transactions and putMany beside remote updates and observer writes', () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`seed ${seed}`, async () => {
      const random = prng(seed);
      const path = join(dir, `s${seed}.db`);
      const db = await openDatabase({ id: `local-writes-fuzz-${seed}`, path });
      const doc = db.doc;
      const mirror = new Y.Doc();
      let updates = 0;
      let changedTransactions = 0;
      doc.on('update', (u: Uint8Array) => {
        updates++;
        Y.applyUpdate(mirror, u);
      });
      doc.on('afterTransaction', (tr: Y.Transaction) => {
        let changed = tr.deleteSet.clients.size > 0;
        for (const [client, clock] of tr.afterState) if ((tr.beforeState.get(client) ?? 0) !== clock) changed = true;
        if (changed) changedTransactions++;
      });
      const mirrorV2 = new Y.Doc();
      doc.on('updateV2', (u: Uint8Array) => Y.applyUpdateV2(mirrorV2, u));
      // An app that echoes remote changes synchronously (a local transaction inside the remote one's cleanup).
      doc.getMap('nodes').observe((e) => {
        if (!e.transaction.local) for (const k of e.keysChanged) doc.getMap('echo').set(k, e.transaction.origin === 'big' ? 'big' : 'small');
      });
      const observed: string[] = [];
      doc.getMap('fields').observe((e) => {
        for (const key of e.keysChanged) observed.push(key);
      });
      const remotes = [new Y.Doc(), new Y.Doc()];
      remotes[0]!.clientID = doc.clientID - 1;
      remotes[1]!.clientID = doc.clientID + 1;
      const ids = Array.from({ length: 10 }, (_, i) => `n${i}`);
      let localWrites = 0;
      for (let step = 0; step < 300; step++) {
        const r = random();
        const id = ids[Math.floor(random() * ids.length)]!;
        if (r < 0.15) {
          const remote = remotes[Math.floor(random() * 2)]!;
          if (random() < 0.5) Y.applyUpdate(remote, Y.encodeStateAsUpdate(doc));
          remote.transact(() => {
            remote.getMap('nodes').set(id, true);
            remote.getMap('fields').set(`${id}\u0000title`, `remote ${step}`);
            if (random() < 0.3) remote.getMap('fields').delete(`${id}\u0000n`);
            if (random() < 0.2) remote.getMap('nodes').delete(ids[Math.floor(random() * ids.length)]!);
          });
          const big = random() < 0.3;
          if (big) remote.getMap('fields').set(`${id}\u0000blob`, 'b'.repeat(70 * 1024 + step));
          const u = Y.encodeStateAsUpdate(remote, Y.encodeStateVector(doc));
          if (random() < 0.5) Y.applyUpdate(doc, u, 'peer');
          else applyRemoteUpdates(doc, [u], big ? 'big' : 'peer');
        } else if (r < 0.3) {
          db.delete(id);
          localWrites++;
        } else if (r < 0.4) {
          db.transact(() => {
            for (let i = 0; i < 1 + Math.floor(random() * 4); i++) db.put(ids[Math.floor(random() * ids.length)]!, randomData(random));
            if (random() < 0.3) db.delete(ids[Math.floor(random() * ids.length)]!);
          });
          localWrites++;
        } else if (r < 0.45) {
          db.putMany(Array.from({ length: 1 + Math.floor(random() * 30) }, (_, i) => [ids[(i + step) % ids.length]!, randomData(random)] as const));
          localWrites++;
        } else {
          db.put(id, randomData(random));
          localWrites++;
        }
        if (random() < 0.4) await macrotask();
      }
      await macrotask();
      // Every update the listeners got rebuilds the document, one update per changing transaction.
      expect(Buffer.from(Y.encodeStateVector(mirror)).equals(Buffer.from(Y.encodeStateVector(doc)))).toBe(true);
      expect(mirror.getMap('fields').toJSON()).toEqual(doc.getMap('fields').toJSON());
      expect(mirror.getMap('nodes').toJSON()).toEqual(doc.getMap('nodes').toJSON());
      expect(Buffer.from(Y.encodeStateAsUpdate(mirror)).equals(Buffer.from(Y.encodeStateAsUpdate(doc)))).toBe(true);
      expect(updates).toBe(changedTransactions);
      expect(Buffer.from(Y.encodeStateAsUpdate(mirrorV2)).equals(Buffer.from(Y.encodeStateAsUpdate(doc)))).toBe(true);
      expect(observed.length).toBeGreaterThan(localWrites / 2);
      const list = db.list();
      await db.close();
      // What SQLite holds is the same document.
      const again = await openDatabase({ id: `local-writes-fuzz-${seed}`, path });
      expect(again.list()).toEqual(list);
      expect(again.doc.getMap('fields').toJSON()).toEqual(mirror.getMap('fields').toJSON());
      await again.close();
    });
  }
});
