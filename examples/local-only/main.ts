// A database with no network at all: a local SQLite file that keeps working offline.
// Run: npm exec -- tsx --conditions=rhizome-source examples/local-only/main.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateDatabaseId } from '@rhizome/core';
import { openDatabase } from '@rhizome/sync';

const dir = mkdtempSync(join(tmpdir(), 'rhizome-local-only-'));
const path = join(dir, 'todo.db');
const id = generateDatabaseId(); // keep it: the same id reopens the same database

try {
  // No `transport` option: local only. Add one later and the same file starts to sync.
  const db = await openDatabase({ id, path });
  db.put('task-1', { title: 'Buy milk', done: false });
  db.put('task-2', { title: 'Write the report', done: false, tags: ['work'] });
  db.put('task-1', { done: true }); // fields merge: task-1 keeps its title
  db.delete('task-2');
  console.log('nodes:', JSON.stringify(db.list()));
  await db.close();

  // Every write that returned is already in SQLite: reopening the file finds it.
  const again = await openDatabase({ id, path });
  console.log('after reopening:', JSON.stringify(again.get('task-1')));
  console.log('task-2 after reopening:', again.get('task-2') === undefined ? 'deleted' : 'still there');
  await again.close();
  console.log(`database file was ${path}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
