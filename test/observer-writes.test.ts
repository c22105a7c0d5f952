// An app's Yjs observer that WRITES when a remote update arrives (a derived field, an index, an
// echo): its write is a local transaction Yjs opens inside the remote one's cleanup. It must reach
// the database's 'update' listeners like any local write (SQLite, the other peers, the app's own
// listeners) on both paths of sync/src/apply.ts: an ordinary update, and a single update of
// REENCODE_SKIP_BYTES or more (whose listeners are taken out of the registry while it applies).
import { join } from 'node:path';
import * as Y from 'yjs';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryTransport } from '@rhizome/core';
import { openDatabase } from '@rhizome/sync';
import { tempDir, uniqueHub, until } from './sync-helpers.js';

/** Resolves once `check()` holds, looked at after each update of `doc`; rejects after 20 s naming `what`. */
function docUntil(doc: Y.Doc, check: () => boolean, what: string): Promise<void> {
  if (check()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onUpdate = (): void => {
      if (!check()) return;
      clearTimeout(timer);
      doc.off('update', onUpdate);
      resolve();
    };
    const timer = setTimeout(() => {
      doc.off('update', onUpdate);
      reject(new Error(`timed out waiting for ${what}`));
    }, 20_000);
    doc.on('update', onUpdate);
  });
}

const { dir, cleanup } = tempDir('rhizome-observer-writes-');
afterAll(cleanup);

describe('an app observer that writes on a remote update', () => {
  it('its write reaches the other peer, the app\'s update listeners and SQLite, after small and large updates', async () => {
    const hub = uniqueHub('observer-writes');
    const id = 'observer-writes';
    const path = join(dir, 'b.db');
    const a = await openDatabase({ id, transport: new MemoryTransport({ hub }) });
    const b = await openDatabase({ id, path, transport: new MemoryTransport({ hub }) });
    // Everything b's 'update' listeners hear, applied to a copy: it must end up equal to b's doc.
    const heard = new Y.Doc();
    b.doc.on('update', (u: Uint8Array) => Y.applyUpdate(heard, u));
    try {
      await b.whenSynced({ minPeers: 1 });
      // On a remote change, b writes an echo of each node synchronously, in a transaction of its own.
      b.doc.getMap('nodes').observe((event) => {
        if (event.transaction.local) return;
        for (const key of event.keysChanged) {
          if (!key.startsWith('echo-')) b.doc.getMap('echoes').set(`echo-${key}`, true);
        }
      });
      a.put('small', { v: 1 });
      await docUntil(a.doc, () => a.doc.getMap('echoes').get('echo-small') === true, 'the echo of small at a');
      // One large update (over 64 KiB): the path that hands the received bytes to the listeners.
      a.put('large', { v: 'x'.repeat(100 * 1024) });
      await until(b, () => b.get('large') !== undefined, 'large at b');
      await docUntil(a.doc, () => a.doc.getMap('echoes').get('echo-large') === true, 'the echo of large at a');
      expect(heard.getMap('echoes').toJSON()).toEqual({ 'echo-small': true, 'echo-large': true });
      expect(Buffer.from(Y.encodeStateVector(heard)).equals(Buffer.from(Y.encodeStateVector(b.doc)))).toBe(true);
    } finally {
      await b.close();
      await a.close();
    }
    const again = await openDatabase({ id, path });
    try {
      expect(again.doc.getMap('echoes').toJSON()).toEqual({ 'echo-small': true, 'echo-large': true });
    } finally {
      await again.close();
    }
  });
});
