// The floor writer of the local-put benchmarks (bench/sync.ts, bench/puts-tight.ts): the same
// layout and store settings as a database, with none of Rhizome.
import * as Y from 'yjs';
import Sqlite from 'better-sqlite3';
import { encodeTransaction } from '../packages/sync/src/doc-updates.js';
import { setEntry } from '../packages/sync/src/nodes.js';

/** The benchmarks' 3-field node. */
export function node(i: number): { title: string; n: number; done: boolean } {
  return { title: `node number ${i}`, n: i, done: i % 2 === 0 };
}

/**
 * The floors for local puts: the cheapest code that keeps what the contract asks of a put, with
 * none of Rhizome. A bare `Y.Doc` with the database's layout (a marker plus one `fields` entry per
 * field: the layout that lets concurrent puts of different fields both survive) and an SQLite
 * file in WAL mode with `synchronous=NORMAL` (the store's settings), where every Yjs update is one
 * autocommit `INSERT` of its bytes from a microtask at the end of the task that made it (in
 * SQLite before the next macrotask). `perTransaction` puts go in one Yjs transaction.
 *
 * `encoder`: `'yjs'` takes the update from Yjs's `'update'` event (lib0's encoder, one native
 * `encodeInto` per string) and writes entries with `Y.Map#set`; `'js'` does both as Rhizome does
 * since session 6 (sync/src/doc-updates.ts: the same bytes, short strings written in JavaScript;
 * nodes.ts `setEntry`: the same items, without `Y.Map#set`'s nested transaction), the cheapest
 * code we know for the same contract. `'none'` makes no update at all (the bare layout's cost,
 * nothing encoded or persisted).
 */
export function floorWriter(path: string, encoder: 'yjs' | 'js' | 'none' = 'yjs'): { put: (from: number, count: number) => void; close: () => void } {
  const sql = new Sqlite(path);
  sql.pragma('journal_mode = WAL');
  sql.pragma('synchronous = NORMAL');
  // The store's log since schema version 2 (session 10): a rowid table keyed (doc << 44) + seq.
  sql.exec('CREATE TABLE updates (key INTEGER PRIMARY KEY, data BLOB NOT NULL)');
  const insert = sql.prepare('INSERT INTO updates (key, data) VALUES ((1 << 44) + ?, ?)');
  const doc = new Y.Doc();
  const nodes = doc.getMap('nodes');
  const fields = doc.getMap('fields');
  let seq = 0;
  const queue: Uint8Array[] = [];
  let scheduled = false;
  const write = (): void => {
    scheduled = false;
    for (const update of queue) insert.run(++seq, update);
    queue.length = 0;
  };
  const onUpdate = (update: Uint8Array): void => {
    queue.push(update);
    if (!scheduled) {
      scheduled = true;
      queueMicrotask(write);
    }
  };
  if (encoder === 'yjs') doc.on('update', onUpdate);
  else if (encoder === 'js') {
    doc.on('afterTransactionCleanup', (tr: Y.Transaction) => {
      const update = encodeTransaction(tr);
      if (update !== null) onUpdate(update);
    });
  }
  return {
    put(from, count) {
      doc.transact((tr) => {
        for (let i = from; i < from + count; i++) {
          const data = node(i);
          const id = `n${i}`;
          if (encoder === 'js') {
            setEntry(tr, nodes, id, true);
            for (const field in data) setEntry(tr, fields, id + '\u0000' + field, data[field as keyof typeof data]);
          } else {
            nodes.set(id, true);
            for (const field in data) fields.set(id + '\u0000' + field, data[field as keyof typeof data]);
          }
        }
      });
    },
    close: () => sql.close(),
  };
}
