// Rhizome's client side for the comparison: one `openDatabase` per replica, over the relay
// transport (sealing on, the default), optionally persisted in SQLite.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as Y from 'yjs';
import { openDatabase } from '@rhizome/sync';
import { FIELDS_MAP, FIELD_SEP, NODES_MAP } from './types.js';
import type { BenchClient, ClientKit, ClientOptions } from './types.js';

const version = (name: string): string =>
  (JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

export const rhizome: ClientKit = {
  versions: { '@rhizome/sync': version('@rhizome/sync'), yjs: version('yjs'), ws: version('ws') },
  async open(options: ClientOptions): Promise<BenchClient> {
    const db = await openDatabase({
      id: options.room,
      ...(options.path ? { path: options.path } : {}),
      transport: { mode: 'relay', relayUrl: options.url },
    });
    const fields = db.doc.getMap<unknown>(FIELDS_MAP);
    const nodes = db.doc.getMap<unknown>(NODES_MAP);
    return {
      put: (id, data) => db.put(id, data),
      putMany(prefix, count) {
        db.doc.transact(() => {
          for (let i = 0; i < count; i++) db.put(prefix + i, { v: i });
        });
      },
      size: () => nodes.size,
      onRemote(listener) {
        fields.observe((event, tr) => {
          if (tr.local) return;
          for (const key of event.keysChanged) {
            const cut = key.indexOf(FIELD_SEP);
            if (cut >= 0) listener(key.slice(0, cut), key.slice(cut + 1), fields.get(key));
          }
        });
      },
      ready: (timeoutMs) => db.whenSynced({ timeoutMs, minPeers: options.peers ?? 0 }),
      stateBytes: () => Y.encodeStateAsUpdate(db.doc).length,
      close: () => db.close(),
    };
  },
};
