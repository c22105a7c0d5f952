import { AbortError, TransportClosedError } from './errors.js';
import { AsyncQueue } from './async-queue.js';
import { assertTopic } from './topic.js';
import type { Connection, ConnectOptions, PeerInfo, TopicHash, Transport } from './types.js';

/**
 * The local-only transport: announce is a no-op, lookup finds nobody, connect yields no
 * connection and ends when aborted or disconnected. A database opened without a transport
 * uses it, and keeps working offline.
 */
export class DisabledTransport implements Transport {
  readonly name = 'disabled';
  readonly peerId = 'local';
  readonly maxMessageSize = 0;
  readonly #open = new Set<AsyncQueue<Connection>>();
  #closed = false;

  async announce(topic: TopicHash): Promise<void> {
    this.#assertOpen();
    assertTopic(topic);
  }

  async lookup(topic: TopicHash): Promise<PeerInfo[]> {
    this.#assertOpen();
    assertTopic(topic);
    return [];
  }

  async connect(topic: TopicHash, options: ConnectOptions = {}): Promise<AsyncIterable<Connection>> {
    this.#assertOpen();
    assertTopic(topic);
    if (options.signal?.aborted) throw new AbortError();
    const queue = new AsyncQueue<Connection>();
    this.#open.add(queue);
    options.signal?.addEventListener('abort', () => {
      queue.end();
      this.#open.delete(queue);
    }, { once: true });
    return queue;
  }

  async disconnect(): Promise<void> {
    this.#closed = true;
    for (const q of this.#open) q.end();
    this.#open.clear();
  }

  #assertOpen(): void {
    if (this.#closed) throw new TransportClosedError('disabled transport is disconnected');
  }
}
