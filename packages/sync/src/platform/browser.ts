import { createTransport, resolveTransportConfig, type TransportConfig, type Transport } from '@rhizome/core';
import { openBrowserStore } from '@rhizome/store-browser';
import { createTransportFromConfig } from '@rhizome/transport-relay';
import type { Macrotask, Platform } from './types.js';

/**
 * A macrotask scheduler on a `MessageChannel`: runs after pending events like `setImmediate`,
 * without the 4 ms clamp of nested `setTimeout`, and is not throttled in background tabs the
 * way timers are.
 */
export function messageChannelMacrotask(): Macrotask {
  let channel: MessageChannel | undefined;
  const pending = new Map<number, () => void>();
  let nextId = 0;
  return (fn) => {
    if (!channel) {
      channel = new MessageChannel();
      channel.port1.onmessage = (event: MessageEvent<number>) => {
        const task = pending.get(event.data);
        if (!task) return;
        pending.delete(event.data);
        task();
      };
    }
    const id = nextId++;
    pending.set(id, fn);
    channel.port2.postMessage(id);
    return () => pending.delete(id);
  };
}

/**
 * Relay transports are built in place (the relay client is small and uses the page's
 * WebSocket); other modes go through core's `createTransport` (`'dht'` needs a transport the
 * app builds and passes itself).
 */
function browserTransport(config: Partial<TransportConfig>): Transport {
  if (config.mode === 'relay') return createTransportFromConfig(resolveTransportConfig(config));
  return createTransport(config);
}

/**
 * Browsers (pages and workers): IndexedDB by default (`path` names the store), a
 * `MessageChannel` for background work, and the relay client bundled in.
 */
export const browserPlatform: Platform = {
  name: 'browser',
  openStore: (path) => openBrowserStore(path),
  macrotask: messageChannelMacrotask(),
  createTransport: browserTransport,
};
