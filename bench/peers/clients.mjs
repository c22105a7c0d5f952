// Client side of the peers, behind the interface of bench/compare/types.ts (`ClientKit`):
// loaded by bench/compare/driver.ts, in a process that loads no Rhizome code (one Yjs copy).
// Every client writes Rhizome's node layout (root map `nodes`: id -> true; root map `fields`:
// `id U+0000 field` -> value), so all systems move the same Yjs changes.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import * as Y from 'yjs';

// Package versions from the installed manifests (some packages do not export ./package.json).
const version = (name) => JSON.parse(readFileSync(join(join(dirname(fileURLToPath(import.meta.url)), 'node_modules'), name, 'package.json'), 'utf8')).version;
const SEP = '\u0000';

/** Resolves when `ok()` holds, re-checking on `event` of `emitter`; rejects after `timeoutMs`. */
function when(ok, subscribe, timeoutMs, what) {
  if (ok()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    let unsubscribe = () => {};
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`${what}: not ready after ${timeoutMs} ms`));
    }, timeoutMs);
    unsubscribe = subscribe(() => {
      if (!ok()) return;
      clearTimeout(timer);
      unsubscribe();
      resolve();
    });
  });
}

/** The node model over a Y.Doc, shared by every peer client. */
function nodeModel(doc) {
  const nodes = doc.getMap('nodes');
  const fields = doc.getMap('fields');
  return {
    put(id, data) {
      doc.transact(() => {
        nodes.set(id, true);
        for (const [field, value] of Object.entries(data)) fields.set(id + SEP + field, value);
      });
    },
    putMany(prefix, count) {
      doc.transact(() => {
        for (let i = 0; i < count; i++) {
          nodes.set(prefix + i, true);
          fields.set(prefix + i + SEP + 'v', i);
        }
      });
    },
    size: () => nodes.size,
    onRemote(listener) {
      fields.observe((event, tr) => {
        if (tr.local) return;
        for (const key of event.keysChanged) {
          const cut = key.indexOf(SEP);
          if (cut >= 0) listener(key.slice(0, cut), key.slice(cut + 1), fields.get(key));
        }
      });
    },
    stateBytes: () => Y.encodeStateAsUpdate(doc).length,
  };
}

/** y-websocket's provider against @y/websocket-server. */
export const yWebsocket = {
  versions: { 'y-websocket': version('y-websocket'), yjs: version('yjs') },
  renewPresence: ({ handle: provider }) => provider.awareness.setLocalState(provider.awareness.getLocalState()),
  awarenessStates: ({ handle: provider }) => provider.awareness.getStates().size,
  inspect: ({ handle: provider }) => ({ connected: provider.wsconnected, synced: provider.synced, awarenessStates: provider.awareness.getStates().size, peers: null }),
  async open({ url, room }) {
    const { WebsocketProvider } = await import('y-websocket');
    const doc = new Y.Doc();
    // disableBc: two providers of one room in one process would otherwise talk over a
    // BroadcastChannel and bypass the server.
    const provider = new WebsocketProvider(url, room, doc, { WebSocketPolyfill: WebSocket, disableBc: true });
    return {
      ...nodeModel(doc),
      handle: provider,
      ready: (timeoutMs) =>
        when(
          () => provider.synced,
          (fn) => {
            provider.on('sync', fn);
            return () => provider.off('sync', fn);
          },
          timeoutMs,
          'y-websocket sync',
        ),
      async close() {
        provider.destroy();
        doc.destroy();
      },
    };
  },
};

/** Hocuspocus's provider against @hocuspocus/server. */
export const hocuspocus = {
  versions: { '@hocuspocus/provider': version('@hocuspocus/provider'), yjs: version('yjs') },
  renewPresence: ({ handle: provider }) => provider.awareness?.setLocalState(provider.awareness.getLocalState()),
  awarenessStates: ({ handle: provider }) => provider.awareness?.getStates().size ?? 0,
  inspect: ({ handle: provider }) => ({
    connected: provider.configuration.websocketProvider.status === 'connected',
    synced: provider.isSynced,
    awarenessStates: provider.awareness?.getStates().size ?? 0,
    peers: null,
  }),
  async open({ url, room }) {
    const { HocuspocusProvider } = await import('@hocuspocus/provider');
    const doc = new Y.Doc();
    const provider = new HocuspocusProvider({ url, name: room, document: doc, WebSocketPolyfill: WebSocket });
    return {
      ...nodeModel(doc),
      handle: provider,
      ready: (timeoutMs) =>
        when(
          () => provider.isSynced,
          (fn) => {
            provider.on('synced', fn);
            return () => provider.off('synced', fn);
          },
          timeoutMs,
          'hocuspocus synced',
        ),
      async close() {
        provider.destroy();
        doc.destroy();
      },
    };
  },
};

/**
 * Yjs over the bare forwarder: every local update is one binary frame, every frame received is
 * applied. No sync protocol (a late joiner gets nothing), so it serves the stream, fan-out and
 * idle workloads only: the ceiling of what any relay could do on this machine.
 */
export const bare = {
  versions: { ws: version('ws'), yjs: version('yjs') },
  inspect: ({ handle: ws }) => ({ connected: ws.readyState === WebSocket.OPEN, synced: ws.readyState === WebSocket.OPEN, awarenessStates: 0, peers: null }),
  async open({ url, room }) {
    const doc = new Y.Doc();
    const ws = new WebSocket(`${url}/${room}`, { perMessageDeflate: false });
    ws.binaryType = 'nodebuffer';
    let open = false;
    const opened = new Promise((resolve, reject) => {
      ws.once('open', () => {
        open = true;
        resolve();
      });
      ws.once('error', reject);
    });
    opened.catch(() => {});
    doc.on('update', (update, origin) => {
      if (origin !== ws) ws.send(update);
    });
    ws.on('message', (data) => Y.applyUpdate(doc, data, ws));
    return {
      ...nodeModel(doc),
      handle: ws,
      ready: (timeoutMs) =>
        open
          ? Promise.resolve()
          : Promise.race([
              opened,
              new Promise((_, reject) => setTimeout(() => reject(new Error(`bare: not open after ${timeoutMs} ms`)), timeoutMs).unref()),
            ]),
      async close() {
        ws.close();
        doc.destroy();
      },
    };
  },
};

export const kits = { 'y-websocket': yWebsocket, hocuspocus, bare };
