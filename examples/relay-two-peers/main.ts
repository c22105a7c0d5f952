// Two peers syncing through a relay: the setup for apps whose users sit behind NATs and
// firewalls where only HTTPS gets out. The relay runs here on 127.0.0.1 (a free port) so the
// example is self-contained; in production it is `rhizome relay` on port 443 with TLS, and the
// peers use createTransport({ mode: 'relay', relayUrl: 'relay.example.com' }).
// Run: npm exec -- tsx --conditions=rhizome-source examples/relay-two-peers/main.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTransport, generateDatabaseId, type SyncEvent } from '@rhizome/core';
import { createRelayServer } from '@rhizome/relay';
import { openDatabase, type Database } from '@rhizome/sync';

const dir = mkdtempSync(join(tmpdir(), 'rhizome-relay-two-peers-'));
const relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
console.log(`relay on ${relay.url}`);

/** The first event of `db` matching `predicate` (bounded: 15 s). */
function next(db: Database, predicate: (e: SyncEvent) => boolean): Promise<SyncEvent> {
  const sub = db.events.subscribe();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.unsubscribe();
      reject(new Error('no such event within 15 s'));
    }, 15_000);
    void (async () => {
      for await (const e of sub) {
        if (!predicate(e)) continue;
        clearTimeout(timer);
        sub.unsubscribe();
        resolve(e);
        return;
      }
    })();
  });
}

try {
  const id = generateDatabaseId(); // share it with the other device (a link, a QR code)

  // Alice is online first and writes while Bob is not there yet.
  const alice = await openDatabase({ id, path: join(dir, 'alice.db'), transport: createTransport({ mode: 'relay', relayUrl: relay.url }) });
  alice.put('doc-1', { title: 'Trip plan', owner: 'alice' });
  console.log('alice wrote doc-1 while alone');

  // Bob joins later: the first exchange brings him everything Alice has.
  const bob = await openDatabase({ id, path: join(dir, 'bob.db'), transport: createTransport({ mode: 'relay', relayUrl: relay.url }) });
  await bob.whenSynced({ minPeers: 1, timeoutMs: 15_000 });
  console.log(`bob synced, sees doc-1: ${JSON.stringify(bob.get('doc-1'))}`);

  // Live changes both ways.
  const atAlice = next(alice, (e) => e.type === 'node-upsert' && e.id === 'doc-2' && e.origin === 'remote');
  bob.put('doc-2', { title: 'Packing list', owner: 'bob' });
  const event = await atAlice;
  console.log(`alice got ${event.type === 'node-upsert' ? `${event.id} ${JSON.stringify(event.data)}` : event.type} from bob`);

  const { framesOut, bytesOut } = relay.stats();
  console.log(`the relay forwarded ${framesOut} sealed frames (${bytesOut} bytes) and kept nothing`);

  // A transport passed to openDatabase stays the caller's: close the databases, then disconnect
  // the transports. (Pass a configuration instead, { mode: 'relay', relayUrl }, and the
  // database creates the transport and disconnects it on close.)
  await Promise.all([alice.close(), bob.close()]);
  await Promise.all([alice.transport.disconnect(), bob.transport.disconnect()]);
  console.log('done');
} finally {
  await relay.close();
  rmSync(dir, { recursive: true, force: true });
}
