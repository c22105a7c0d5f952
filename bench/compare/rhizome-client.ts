// Rhizome's client side for the comparison: one `openDatabase` per replica, over the relay
// transport (sealing on, the default), optionally persisted in SQLite.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as Y from 'yjs';
import { openDatabase, type Database } from '@rhizome/sync';
import { FIELDS_MAP, FIELD_SEP, NODES_MAP } from './types.js';
import type { BenchClient, ClientKit, ClientOptions } from './types.js';

const version = (name: string): string =>
  (JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

export const rhizome: ClientKit = {
  versions: { '@rhizome/sync': version('@rhizome/sync'), yjs: version('yjs'), ws: version('ws') },
  renewPresence(client) {
    const { awareness } = client.handle as Database;
    awareness.setLocalState(awareness.getLocalState());
  },
  awarenessStates(client) {
    return (client.handle as Database).awareness.getStates().size;
  },
  inspect(client) {
    const db = client.handle as Database;
    const peers = db.stats().peers;
    // A replica of a mesh is connected and synced when it is so with every peer it waited for
    // (the workload compares `peers` with that number).
    return { connected: peers.length > 0, synced: peers.every((p) => p.synced), awarenessStates: db.awareness.getStates().size, peers: peers.length };
  },
  async open(options: ClientOptions): Promise<BenchClient> {
    const db = await openDatabase({
      id: options.room,
      ...(options.path ? { path: options.path } : {}),
      transport: { mode: 'relay', relayUrl: options.url },
    });
    const fields = db.doc.getMap<unknown>(FIELDS_MAP);
    const nodes = db.doc.getMap<unknown>(NODES_MAP);
    // Methods, not arrow functions: tsx compiles this file with esbuild's keepNames, which wraps
    // every arrow function assigned to a named property in `__name(fn, "x")` (an
    // Object.defineProperty per replica and closure, ~250 B of dictionary properties each), and the
    // peers' clients (plain .mjs) carry no such wrappers: measured against Rhizome, ~1.6 KiB per
    // replica in the idle workload (BENCHMARKS.md § Issue 12, Session 12 (audit)). The driver
    // refuses a kit whose open() has them.
    return {
      handle: db,
      put(id, data) {
        db.put(id, data);
      },
      putMany(prefix, count) {
        db.doc.transact(() => {
          for (let i = 0; i < count; i++) db.put(prefix + i, { v: i });
        });
      },
      size() {
        return nodes.size;
      },
      onRemote(listener) {
        fields.observe((event, tr) => {
          if (tr.local) return;
          for (const key of event.keysChanged) {
            const cut = key.indexOf(FIELD_SEP);
            if (cut >= 0) listener(key.slice(0, cut), key.slice(cut + 1), fields.get(key));
          }
        });
      },
      ready(timeoutMs) {
        return db.whenSynced({ timeoutMs, minPeers: options.peers ?? 0 });
      },
      stateBytes() {
        return Y.encodeStateAsUpdate(db.doc).length;
      },
      close() {
        return db.close();
      },
    };
  },
};
