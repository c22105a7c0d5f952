// Binding a Y.Text of the database's Yjs document, as a text editor binding would
// (y-prosemirror, y-codemirror, y-quill all take a Y.Text or Y.XmlFragment of a Y.Doc).
// Two replicas edit the same text concurrently; both end with the same merged text, and it is
// persisted in SQLite like the nodes are.
// Run: npm exec -- tsx --conditions=rhizome-source examples/yjs-text/main.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as Y from 'yjs';
import { MemoryTransport, generateDatabaseId } from '@rhizome/core';
import { openDatabase } from '@rhizome/sync';

const dir = mkdtempSync(join(tmpdir(), 'rhizome-yjs-text-'));
const id = generateDatabaseId();

try {
  // Two replicas meeting on an in-process hub; over a network, pass
  // { mode: 'relay', relayUrl } or { mode: 'dht', bootstrap } instead.
  const alice = await openDatabase({ id, path: join(dir, 'alice.db'), transport: new MemoryTransport({ hub: 'yjs-text' }) });
  const bob = await openDatabase({ id, path: join(dir, 'bob.db'), transport: new MemoryTransport({ hub: 'yjs-text' }) });
  await Promise.all([alice.whenSynced({ minPeers: 1 }), bob.whenSynced({ minPeers: 1 })]);

  // What an editor binding does: take the shared type, observe remote changes, apply local edits.
  const aliceText = alice.doc.getText('body');
  const bobText = bob.doc.getText('body');
  bobText.observe((event: Y.YTextEvent) => {
    if (!event.transaction.local) console.log(`bob's editor sees a remote change: ${JSON.stringify(event.delta)}`);
  });

  aliceText.insert(0, 'Hello world');
  await waitFor(bob, () => bobText.toString() === 'Hello world');
  console.log(`bob has: ${JSON.stringify(bobText.toString())}`);

  // Concurrent edits at both ends, before either sees the other's: Yjs merges them.
  alice.doc.transact(() => aliceText.insert(5, ', dear'));
  bob.doc.transact(() => bobText.insert(bobText.length, '!'));
  await waitFor(alice, () => aliceText.toString() === bobText.toString() && aliceText.length === 'Hello, dear world!'.length);
  console.log(`merged: alice ${JSON.stringify(aliceText.toString())}, bob ${JSON.stringify(bobText.toString())}`);

  await Promise.all([alice.close(), bob.close()]);

  // The text is in bob's SQLite file: a reopened replica (no network) still has it.
  const reopened = await openDatabase({ id, path: join(dir, 'bob.db') });
  console.log(`bob's file after reopening: ${JSON.stringify(reopened.doc.getText('body').toString())}`);
  await reopened.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/** Resolves once `check()` holds, re-checking after each update of the doc (bounded: 10 s). */
function waitFor(db: { doc: Y.Doc }, check: () => boolean): Promise<void> {
  if (check()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      db.doc.off('update', onUpdate);
      reject(new Error('the edit did not arrive within 10 s'));
    }, 10_000);
    const onUpdate = (): void => {
      if (!check()) return;
      clearTimeout(timer);
      db.doc.off('update', onUpdate);
      resolve();
    };
    db.doc.on('update', onUpdate);
  });
}
