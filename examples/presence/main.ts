// Presence with y-protocols awareness: who is online and where their cursor is. Awareness
// state is sealed like every other frame, never persisted, and removed when a replica leaves.
// Run: npm exec -- tsx --conditions=rhizome-source examples/presence/main.ts
import { MemoryTransport, generateDatabaseId } from '@rhizome/core';
import { openDatabase, type Database } from '@rhizome/sync';

const id = generateDatabaseId();
// In-memory databases on an in-process hub keep the example small; presence works the same
// over { mode: 'relay', relayUrl } or { mode: 'dht', bootstrap }.
const ada = await openDatabase({ id, transport: new MemoryTransport({ hub: 'presence' }) });
const bob = await openDatabase({ id, transport: new MemoryTransport({ hub: 'presence' }) });
await Promise.all([ada.whenSynced({ minPeers: 1 }), bob.whenSynced({ minPeers: 1 })]);

type Presence = { user?: { name: string; color: string }; cursor?: { node: string; offset: number } };

function online(db: Database): string[] {
  const names: string[] = [];
  for (const [clientId, state] of db.awareness.getStates()) {
    const presence = state as Presence;
    if (presence.user) names.push(`${presence.user.name}${clientId === db.awareness.clientID ? ' (me)' : ''}${presence.cursor ? ` at ${presence.cursor.node}:${presence.cursor.offset}` : ''}`);
  }
  return names.sort();
}

/** Resolves when bob's view of who is online satisfies `check` (bounded: 10 s). */
function bobSees(check: (names: string[]) => boolean): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`presence did not arrive within 10 s; bob sees ${JSON.stringify(online(bob))}`)), 10_000);
    const onChange = (): void => {
      const names = online(bob);
      if (!check(names)) return;
      clearTimeout(timer);
      bob.awareness.off('change', onChange);
      resolve(names);
    };
    bob.awareness.on('change', onChange);
    onChange();
  });
}

bob.awareness.setLocalStateField('user', { name: 'Bob', color: '#3a7' });
ada.awareness.setLocalStateField('user', { name: 'Ada', color: '#a37' });
console.log('bob sees online:', (await bobSees((n) => n.some((x) => x.startsWith('Ada')))).join(', '));

ada.awareness.setLocalStateField('cursor', { node: 'note-1', offset: 12 });
console.log('bob sees online:', (await bobSees((n) => n.some((x) => x.startsWith('Ada at note-1:12')))).join(', '));

// Closing a replica removes its presence at the others.
const gone = bobSees((n) => !n.some((x) => x.startsWith('Ada')));
await ada.close();
console.log('after ada left, bob sees:', (await gone).join(', '));
await bob.close();
