// Seeded chaos: 5 replicas on SQLite files, ~1,000 random puts and deletes on colliding node ids
// and fields, random partitions (replicas split across memory hubs), heals, and restarts from
// disk. At the end every replica holds the same nodes and the same Yjs state.
//
// Reproduce a run: RHIZOME_SEED=<seed printed on failure> npm exec -- vitest run test/convergence.test.ts
import { afterAll, expect, it } from 'vitest';
import { join } from 'node:path';
import * as Y from 'yjs';
import type { JsonValue } from '@rhizome/core';
import { openDatabase } from '@rhizome/sync';
import type { Database } from '@rhizome/sync';
import { tempDir, uniqueHub } from './sync-helpers.js';
import { prng } from './prng.js';

const REPLICAS = 5;
const EPOCHS = 18;
/** Ops done at the end on the healed, fully connected mesh (live updates only). */
const FINALE_OPS = 100;
const OPS_PER_EPOCH = 50;
const NODE_IDS = ['n0', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7'];
const FIELDS = ['a', 'b', 'c', 'd'];

// Three seeds per run: RHIZOME_SEED pins one (and runs only it).
const SEEDS = process.env.RHIZOME_SEED !== undefined
  ? [Number(process.env.RHIZOME_SEED)]
  : Array.from({ length: 3 }, () => Math.floor(Math.random() * 2 ** 32));
const { dir, cleanup } = tempDir('rhizome-convergence-');
afterAll(cleanup);

/** Resolves once `check()` holds, re-checking after every doc update of any replica; bounded. */
function untilDocs(dbs: Database[], check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  if (check()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const off = (): void => {
      clearTimeout(timer);
      for (const d of dbs) d.doc.off('update', onUpdate);
    };
    const onUpdate = (): void => {
      // Re-check after the transaction's observers ran.
      queueMicrotask(() => {
        if (check()) {
          off();
          resolve();
        }
      });
    };
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for ${what}`));
    }, timeoutMs);
    for (const d of dbs) d.doc.on('update', onUpdate);
  });
}

interface Replica {
  name: string;
  path: string;
  db: Database | null;
  group: number | null; // null: offline
}

it.each(SEEDS)('converges under random partitions, heals and restarts (seed %i)', async (seed) => {
  const rand = prng(seed);
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const hubBase = uniqueHub('convergence');
  const id = `convergence-${seed}`;
  const replicas: Replica[] = Array.from({ length: REPLICAS }, (_, i) => ({
    name: `r${i}`,
    path: join(dir, `s${seed}-r${i}.db`),
    db: null,
    group: null,
  }));
  const log: string[] = [];

  const setOnline = async (r: Replica, group: number | null, restart = false): Promise<void> => {
    if (r.group === group && !restart) return;
    if (r.db) await r.db.close();
    r.db = null;
    r.group = group;
    if (group !== null) {
      r.db = await openDatabase({ id, path: r.path, transport: { mode: 'memory', hub: `${hubBase}-g${group}`, peerId: r.name } });
    }
  };

  const randomValue = (depth = 0): JsonValue => {
    const k = Math.floor(rand() * (depth > 1 ? 4 : 6));
    switch (k) {
      case 0: return Math.floor(rand() * 1000);
      case 1: return `s${Math.floor(rand() * 100)}`;
      case 2: return rand() < 0.5;
      case 3: return null;
      case 4: return [randomValue(depth + 1), randomValue(depth + 1)];
      default: return { x: randomValue(depth + 1) };
    }
  };

  let ops = 0;
  const randomOp = async (online: Replica[]): Promise<void> => {
    const db = pick(online).db!;
    const node = pick(NODE_IDS);
    if (rand() < 0.7) {
      const data: Record<string, JsonValue> = {};
      const n = 1 + Math.floor(rand() * 2);
      for (let f = 0; f < n; f++) data[pick(FIELDS)] = randomValue();
      db.put(node, data);
    } else {
      db.delete(node);
    }
    ops++;
    // Let the network make some progress now and then (a macrotask turn: delivery interleaves with writes).
    if (rand() < 0.3) await new Promise<void>((resolve) => setImmediate(resolve));
    if (rand() < 0.02) await db.whenSynced({ timeoutMs: 20_000 });
  };

  try {
    for (let epoch = 0; epoch < EPOCHS; epoch++) {
      // A new topology: some replicas offline, the rest split over 1..3 hubs; some restart.
      const groups = 1 + Math.floor(rand() * 3);
      for (const r of replicas) {
        const group = rand() < 0.2 ? null : Math.floor(rand() * groups);
        await setOnline(r, group, group !== null && rand() < 0.15);
      }
      log.push(`epoch ${epoch}: ${replicas.map((r) => `${r.name}:${r.group ?? '-'}`).join(' ')}`);
      const online = replicas.filter((r) => r.db);
      if (online.length === 0) continue;
      for (let i = 0; i < OPS_PER_EPOCH; i++) await randomOp(online);
    }

    // Heal: everyone online on one hub (replicas already there keep their connections), then a
    // finale of writes on the full mesh that only live updates can carry.
    for (const r of replicas) await setOnline(r, 0);
    const dbs = replicas.map((r) => r.db!);
    await Promise.all(dbs.map((d) => d.whenSynced({ minPeers: REPLICAS - 1, timeoutMs: 30_000 })));
    for (let i = 0; i < FINALE_OPS; i++) await randomOp(replicas);
    expect(ops).toBeGreaterThan(EPOCHS * OPS_PER_EPOCH * 0.8);
    const svs = (): string[] => dbs.map((d) => Buffer.from(Y.encodeStateVector(d.doc)).toString('hex'));
    const deleteSetsEqual = (): boolean => dbs.every((d) => Y.equalSnapshots(Y.snapshot(d.doc), Y.snapshot(dbs[0]!.doc)));
    await untilDocs(dbs, () => new Set(svs()).size === 1 && deleteSetsEqual(), 'equal state vectors and delete sets');

    const reference = dbs[0]!;
    const expected = reference.list();
    const expectedFields = reference.doc.getMap('fields').toJSON();
    for (const d of dbs) {
      // Same nodes, same raw maps, same Yjs state: equal state vectors and delete sets (Y.equalSnapshots).
      expect(d.list()).toEqual(expected);
      expect(d.doc.getMap('fields').toJSON()).toEqual(expectedFields);
      expect(d.doc.getMap('nodes').toJSON()).toEqual(reference.doc.getMap('nodes').toJSON());
      expect(Y.equalSnapshots(Y.snapshot(d.doc), Y.snapshot(reference.doc))).toBe(true);
      // The same state re-encoded through a fresh doc holds the same content.
      const fresh = new Y.Doc();
      Y.applyUpdate(fresh, Y.encodeStateAsUpdate(d.doc));
      expect(Y.encodeStateVector(fresh)).toEqual(Y.encodeStateVector(reference.doc));
      expect(fresh.getMap('fields').toJSON()).toEqual(expectedFields);
      fresh.destroy();
    }

    // Everything, including remote updates, reached the files: reopen all from disk, offline.
    for (const r of replicas) await setOnline(r, null);
    for (const r of replicas) {
      const again = await openDatabase({ id, path: r.path });
      try {
        expect(again.list()).toEqual(expected);
        expect(Y.equalSnapshots(Y.snapshot(again.doc), Y.snapshot(reference.doc))).toBe(true);
      } finally {
        await again.close();
      }
    }
    // What is asserted as "identical Yjs state": equal state vectors and delete sets
    // (Y.equalSnapshots), equal content of both maps, equal list(). The bytes of
    // Y.encodeStateAsUpdate are not asserted: Yjs may store the same structs split or merged
    // depending on the order they arrived in, so equal states need not encode to equal bytes.
    // They are reported, for the record (they have matched in every run so far).
    const ref = Buffer.from(Y.encodeStateAsUpdate(reference.doc));
    const sameBytes = dbs.every((d) => ref.equals(Buffer.from(Y.encodeStateAsUpdate(d.doc))));
    console.log(`convergence seed ${seed}: ${ops} ops, ${expected.length} nodes at the end; encoded states byte-identical: ${sameBytes}`);
  } catch (error) {
    console.error(`convergence failed with RHIZOME_SEED=${seed}\n${log.join('\n')}`);
    throw error;
  } finally {
    for (const r of replicas) await r.db?.close().catch(() => undefined);
  }
}, 60_000);
