import { deriveTopic, type Connection } from '@rhizome/core';
import { createRelayServer } from '@rhizome/relay';
import { RelayTransport } from '@rhizome/transport-relay';
import { firstConnection } from './sync-helpers.js';

/**
 * A real relay on 127.0.0.1 and two relay transports joined on a fresh topic: the two ends' first
 * connections to each other. Everything made is pushed onto `cleanup` (run it in reverse order).
 */
export async function relayPair(label: string, cleanup: Array<() => Promise<unknown>>, waitMs: number): Promise<[Connection, Connection]> {
  const relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
  cleanup.push(() => relay.close());
  const [ta, tb] = [0, 1].map(() => {
    const t = new RelayTransport({ url: relay.url, timeoutMs: waitMs });
    cleanup.push(() => t.disconnect());
    return t;
  });
  const topic = deriveTopic(`${label} ${Math.random()}`);
  const [a, b] = await Promise.all([firstConnection(ta!, topic, waitMs), firstConnection(tb!, topic, waitMs)]);
  return [a!, b!];
}
