import { AbortError, AsyncQueue, TransportClosedError, assertTopic } from '@rhizome/core';
import type { Connection, ConnectOptions, PeerInfo, TopicHash, Transport } from '@rhizome/core';

/** One transport of a {@link MultiTransport}, and whether the multi-transport disconnects it. */
export interface TransportPart {
  transport: Transport;
  /** Disconnected with the multi-transport (it was built from a configuration). */
  owned: boolean;
}

/**
 * Several transports as one: `openDatabase({ transport: [dht, relay] })` syncs over all of them.
 * `connect` joins the topic on every transport and yields the connections of all of them;
 * the sync layer then keeps one session per remote replica (see `replicas.ts`), so a replica
 * reached over two transports is synced once, over the better path.
 *
 * Each transport joins on its own, so a slow one does not hold the others back. A transport
 * that fails to join is reported through `onError` while the others carry on; the iterable
 * fails only if every transport fails.
 *
 * @example
 * ```ts
 * const db = await openDatabase({
 *   id,
 *   transport: [{ mode: 'dht', bootstrap }, { mode: 'relay', relayUrl: 'relay.example.com' }],
 * });
 * ```
 */
export class MultiTransport implements Transport {
  readonly name = 'multi';
  /** The smallest of the parts' limits, so every message fits every path. */
  readonly maxMessageSize: number;
  readonly parts: readonly TransportPart[];
  readonly #onError: (error: Error & { code?: string }) => void;
  #closing: Promise<void> | null = null;

  constructor(parts: TransportPart[], onError: (error: Error & { code?: string }) => void = () => undefined) {
    this.parts = parts;
    const limits = parts.map((p) => p.transport.maxMessageSize).filter((n) => n > 0);
    this.maxMessageSize = limits.length > 0 ? Math.min(...limits) : 0;
    this.#onError = onError;
  }

  async announce(topic: TopicHash): Promise<void> {
    assertTopic(topic);
    await this.#any(this.parts.map((p) => p.transport.announce(topic)));
  }

  async lookup(topic: TopicHash): Promise<PeerInfo[]> {
    assertTopic(topic);
    const lists = await this.#any(this.parts.map((p) => p.transport.lookup(topic)));
    return lists.flat();
  }

  async connect(topic: TopicHash, options: ConnectOptions = {}): Promise<AsyncIterable<Connection>> {
    assertTopic(topic);
    if (this.#closing) throw new TransportClosedError('multi-transport is disconnected');
    if (options.signal?.aborted) throw new AbortError();
    // Each transport joins on its own: a slow or unreachable one does not hold the others back.
    const queue = new AsyncQueue<Connection>();
    let open = this.parts.length;
    let failures = 0;
    let firstFailure: unknown;
    const ended = (): void => {
      if (--open > 0) return;
      if (failures === this.parts.length) queue.fail(firstFailure);
      else queue.end();
    };
    for (const { transport } of this.parts) {
      void (async () => {
        let iterable: AsyncIterable<Connection>;
        try {
          iterable = await transport.connect(topic, options);
        } catch (error) {
          if (failures++ === 0) firstFailure = error;
          if (failures < this.parts.length && !options.signal?.aborted) this.#onError(asError(error));
          ended();
          return;
        }
        try {
          for await (const conn of iterable) {
            if (!queue.push(conn)) void conn.close().catch(() => undefined);
          }
        } catch (error) {
          if (!options.signal?.aborted) this.#onError(asError(error));
        } finally {
          ended();
        }
      })();
    }
    options.signal?.addEventListener('abort', () => queue.end(), { once: true });
    return queue;
  }

  /** Disconnects the parts built from configurations; given transports stay the caller's. */
  disconnect(): Promise<void> {
    this.#closing ??= Promise.all(this.parts.filter((p) => p.owned).map((p) => p.transport.disconnect().catch(() => undefined))).then(() => undefined);
    return this.#closing;
  }

  /** Resolves with the fulfilled results (failures reported); rejects with the first failure if all fail. */
  async #any<T>(promises: Array<Promise<T>>): Promise<Array<Awaited<T>>> {
    const results = await Promise.allSettled(promises);
    const ok = results.filter((r): r is PromiseFulfilledResult<Awaited<T>> => r.status === 'fulfilled').map((r) => r.value);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
    if (ok.length === 0 && failed.length > 0) throw failed[0];
    for (const reason of failed) this.#onError(asError(reason));
    return ok;
  }
}

function asError(error: unknown): Error & { code?: string } {
  return error instanceof Error ? error : new Error(String(error));
}
