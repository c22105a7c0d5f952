// The floor of "one put per macrotask, persisted" (issue 12), as a minimal reproduction: what the
// durability contract costs with no Rhizome at all, broken into its parts, against Rhizome's
// db.put. Rounds interleave every variant, so all of them see the same machine load; each line
// gives the median wall rate and the median CPU time per put (process.cpuUsage, all threads).
// BENCHMARKS.md § Issue 12, Session 5 (puts) reads it.
//
// node_modules/node/bin/node --conditions=rhizome-source --import tsx bench/puts-floor.ts [--puts 20000] [--rounds 5]
// (without --conditions=rhizome-source it measures the built dist/)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as Y from 'yjs';
import Sqlite from 'better-sqlite3';
import { openDatabase } from '@rhizome/sync';
import { flag } from './args.js';
import { node } from './floor-writer.js';

const PUTS = Number(flag('--puts', '20000'));
const ROUNDS = Number(flag('--rounds', '5'));
const nextMacrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** An SQLite file with the store's settings and its updates table. */
function sqliteFile(path: string): Sqlite.Database {
  const sql = new Sqlite(path);
  sql.pragma('journal_mode = WAL');
  sql.pragma('synchronous = NORMAL');
  sql.exec('CREATE TABLE updates (doc INTEGER NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (doc, seq)) WITHOUT ROWID');
  return sql;
}

/** A bare Y.Doc with the database's layout: a marker and one `fields` entry per field. */
function layoutDoc(): { doc: Y.Doc; put: (i: number) => void } {
  const doc = new Y.Doc();
  const nodes = doc.getMap('nodes');
  const fields = doc.getMap('fields');
  return {
    doc,
    put(i) {
      const data = node(i);
      const id = `n${i}`;
      doc.transact(() => {
        nodes.set(id, true);
        for (const field in data) fields.set(id + '\u0000' + field, data[field as keyof typeof data]);
      });
    },
  };
}

const dir = mkdtempSync(join(tmpdir(), 'rhizome-puts-floor-'));
let files = 0;
const file = (): string => join(dir, `f${files++}.db`);
const blob = new Uint8Array(60).fill(7);

const variants: Array<[string, () => Promise<void>]> = [
  ['await setImmediate alone', async () => {
    for (let i = 0; i < PUTS; i++) await nextMacrotask();
  }],
  ['bare Y.Doc, same layout, no update listener', async () => {
    const { put } = layoutDoc();
    for (let i = 0; i < PUTS; i++) {
      put(i);
      await nextMacrotask();
    }
  }],
  ['autocommit INSERT of a 60 B blob, no Yjs', async () => {
    const sql = sqliteFile(file());
    const insert = sql.prepare('INSERT INTO updates (doc, seq, data) VALUES (1, ?, ?)');
    for (let i = 0; i < PUTS; i++) {
      insert.run(i + 1, blob);
      await nextMacrotask();
    }
    sql.close();
  }],
  ['FLOOR: same layout + update encoded + autocommit INSERT', async () => {
    const sql = sqliteFile(file());
    const insert = sql.prepare('INSERT INTO updates (doc, seq, data) VALUES (1, ?, ?)');
    const { doc, put } = layoutDoc();
    let seq = 0;
    const queue: Uint8Array[] = [];
    let scheduled = false;
    doc.on('update', (update: Uint8Array) => {
      queue.push(update);
      if (scheduled) return;
      scheduled = true;
      queueMicrotask(() => {
        scheduled = false;
        for (const u of queue) insert.run(++seq, u);
        queue.length = 0;
      });
    });
    for (let i = 0; i < PUTS; i++) {
      put(i);
      await nextMacrotask();
    }
    sql.close();
  }],
  ['Rhizome db.put, SQLite file', async () => {
    const db = await openDatabase({ id: 'floor', path: file() });
    for (let i = 0; i < PUTS; i++) {
      db.put(`n${i}`, node(i));
      await nextMacrotask();
    }
    await db.close();
  }],
  ['Rhizome db.put, in memory (no SQLite)', async () => {
    const db = await openDatabase({ id: 'floor' });
    for (let i = 0; i < PUTS; i++) {
      db.put(`n${i}`, node(i));
      await nextMacrotask();
    }
    await db.close();
  }],
];

const results = new Map<string, { rate: number[]; cpu: number[] }>();
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, run] of variants) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await run();
      const ms = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const r = results.get(name) ?? { rate: [], cpu: [] };
      r.rate.push((PUTS / ms) * 1000);
      r.cpu.push((cpu.user + cpu.system) / PUTS);
      results.set(name, r);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
process.stdout.write(`One put per macrotask, ${PUTS} puts of a 3-field node, ${ROUNDS} interleaved rounds (medians)\n\n`);
process.stdout.write('| variant | puts/s | CPU µs per put |\n| --- | --- | --- |\n');
for (const [name, r] of results) {
  process.stdout.write(`| ${name} | ${Math.round(median(r.rate)).toLocaleString('en-US')} | ${median(r.cpu).toFixed(1)} |\n`);
}
process.stdout.write('\n40k puts/s is 25 µs per put: the FLOOR row is the cheapest way to keep the contract.\n');
