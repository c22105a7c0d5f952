// syncWithPeers when the lookup times out but a peer was met another way (with the DHT: mDNS, or a
// peer that dialled this one): the command goes on with that peer instead of reporting the network
// unreachable. Seen by hand: `put --dht --bootstrap <127.0.0.1 addr>` without
// --allow-private-addresses said "could not reach DHT" (exit 1) while mDNS had delivered the write.
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryTransport, TimeoutError, generateDatabaseId, type PeerInfo, type TopicHash } from '@rhizome/core';
import { openDatabase, type Database } from '@rhizome/sync';
import { Output } from './output.js';
import { syncWithPeers } from './replica.js';

/** A memory transport whose lookup never finds anyone and times out, as a DHT lookup can: once `gate` resolves. */
class TimingOutLookup extends MemoryTransport {
  gate: Promise<unknown> = new Promise((resolve) => setTimeout(resolve, 300));
  override async lookup(_topic: TopicHash): Promise<PeerInfo[]> {
    await this.gate;
    throw new TimeoutError('looking up the DHT took over 300 ms');
  }
}

/** Resolves once `db` has a peer (a session, met by whatever way). */
async function aPeer(db: Database): Promise<void> {
  const events = db.events.subscribe();
  try {
    if (db.peers().length > 0) return;
    for await (const e of events) if (e.type === 'peer-connected' || db.peers().length > 0) return;
  } finally {
    events.unsubscribe();
  }
}

const quiet = (): Output => {
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  return new Output(false, { stdout: sink, stderr: sink });
};

const open: Database[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
});

describe('syncWithPeers', () => {
  it('goes on with the peers met while the lookup timed out', async () => {
    const hub = `replica-test-${generateDatabaseId()}`;
    const id = generateDatabaseId();
    const other = await openDatabase({ id, transport: new MemoryTransport({ hub, peerId: 'other' }) });
    open.push(other);
    other.put('n', { from: 'other' });
    const transport = new TimingOutLookup({ hub, peerId: 'this' });
    const db = await openDatabase({ id, transport });
    open.push(db);
    transport.gate = aPeer(db); // the lookup times out only after the peer was met
    const report = await syncWithPeers({ db, path: 'this.db', network: { mode: 'dht' } }, quiet(), 5000);
    expect(report.peers).toBe(1);
    expect(db.get('n')).toEqual({ from: 'other' });
  });

  it('still reports the timeout when nobody was met', async () => {
    const db = await openDatabase({ id: generateDatabaseId(), transport: new TimingOutLookup({ hub: `replica-test-${generateDatabaseId()}`, peerId: 'alone' }) });
    open.push(db);
    await expect(syncWithPeers({ db, path: 'alone.db', network: { mode: 'dht' } }, quiet(), 5000)).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
  });
});
