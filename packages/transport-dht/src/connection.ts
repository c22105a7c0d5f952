import {
  ConnectionClosedError,
  FrameTooLargeError,
  ProtocolError,
  QueuedConnection,
  RhizomeError,
  TimeoutError,
  type Connection,
  type PeerPath,
} from '@rhizome/core';
import type { Connection as Libp2pConnection } from '@libp2p/interface';
import type { StreamChannel } from './channel.js';
import { RECEIVE_HIGH_WATER_MARK } from './options.js';
import { encodeFrame } from './wire.js';

/** What a {@link DhtConnection} is made from, once the topic handshake succeeded. */
export interface DhtConnectionInit {
  peerId: string;
  topic: Uint8Array;
  channel: StreamChannel;
  /** Who dialed: `'outbound'` if this peer did. Used by the tie-break. */
  direction: 'inbound' | 'outbound';
  maxMessageSize: number;
  /** A send that cannot make progress (the peer stopped reading) for this long fails and closes. */
  stallTimeoutMs: number;
  /** Bound on a graceful close before the stream is reset. */
  closeTimeoutMs: number;
  onError: (error: RhizomeError) => void;
  /** The libp2p connection the stream runs on (its path and RTT are reported). */
  link?: Libp2pConnection;
  /** True if DCUtR opened `link` in place of a relayed connection. */
  holepunched?: boolean;
}

/** The path of a libp2p connection: relayed through a circuit relay, hole-punched, or direct. */
export function linkPath(link: Libp2pConnection, holepunched: boolean): PeerPath {
  if (link.limits !== undefined || link.remoteAddr.toString().includes('/p2p-circuit')) return 'circuit';
  return holepunched ? 'holepunched' : 'direct';
}

/**
 * One peer on one topic over one libp2p stream: length-prefixed frames both ways, built on
 * core's {@link QueuedConnection}. Sends wait while the stream's write buffer is full
 * (yamux flow control); received messages pause the stream when the reader falls
 * {@link RECEIVE_HIGH_WATER_MARK} messages behind.
 */
export class DhtConnection extends QueuedConnection implements Connection {
  readonly transport = 'dht';
  readonly topic: Uint8Array;
  readonly direction: 'inbound' | 'outbound';
  /** How the stream reaches the peer (see {@link linkPath}). */
  readonly path: PeerPath;
  readonly #link: Libp2pConnection | undefined;
  readonly #channel: StreamChannel;
  readonly #maxMessageSize: number;
  readonly #stallTimeoutMs: number;
  readonly #closeTimeoutMs: number;
  readonly #onError: (error: RhizomeError) => void;
  #sendTail: Promise<void> = Promise.resolve();
  #shutdown: Promise<void> | null = null;
  #closedLocally = false;

  constructor(init: DhtConnectionInit) {
    super(init.peerId);
    this.topic = init.topic;
    this.direction = init.direction;
    this.#link = init.link;
    this.path = init.link ? linkPath(init.link, init.holepunched ?? false) : 'direct';
    this.#channel = init.channel;
    this.#maxMessageSize = init.maxMessageSize;
    this.#stallTimeoutMs = init.stallTimeoutMs;
    this.#closeTimeoutMs = init.closeTimeoutMs;
    this.#onError = init.onError;
    this.onClose(() => void this.#closeStream());
    init.channel.startFrames({
      onFrame: (payload) => {
        this.deliver(payload);
        if (this.buffered >= RECEIVE_HIGH_WATER_MARK) this.#pause();
      },
      onEnd: () => this.markClosed(),
      onError: (error) => {
        const typed = error instanceof RhizomeError ? error : new ProtocolError(error.message);
        this.#onError(typed);
        this.#channel.abort(typed);
        this.markClosed();
      },
    });
  }

  /** The round-trip time the link monitor (or libp2p's connection monitor) last measured on the underlying connection (ms). */
  get rttMs(): number | undefined {
    const rtt = this.#link?.rtt;
    return typeof rtt === 'number' && Number.isFinite(rtt) ? rtt : undefined;
  }

  /** The libp2p connection the stream runs on, if known. */
  get link(): Libp2pConnection | undefined {
    return this.#link;
  }

  /** Bytes received on this connection's stream so far (handshake included). */
  get bytesReceived(): number {
    return this.#channel.bytesReceived;
  }

  /** The remote address of the underlying libp2p connection (a `/p2p-circuit` address when relayed). */
  get remoteAddr(): string | undefined {
    return this.#link?.remoteAddr.toString();
  }

  /** True if this side closed it (`close()`), false if the remote or the network did. */
  get closedLocally(): boolean {
    return this.#closedLocally;
  }

  override close(): Promise<void> {
    if (!this.closed) this.#closedLocally = true;
    return super.close();
  }

  protected async sendFrame(data: Uint8Array): Promise<void> {
    if (data.length > this.#maxMessageSize) throw new FrameTooLargeError(data.length, this.#maxMessageSize);
    const frame = encodeFrame(data);
    // One send at a time, so frames keep their order even when callers do not await.
    const previous = this.#sendTail;
    let release!: () => void;
    this.#sendTail = new Promise<void>((resolve) => (release = resolve));
    try {
      await previous;
      if (this.closed) throw new ConnectionClosedError();
      let accepted: boolean;
      try {
        accepted = this.#channel.send(frame);
      } catch {
        throw new ConnectionClosedError();
      }
      if (!accepted) await this.#drain();
    } finally {
      release();
    }
  }

  protected closeRemote(): Promise<void> {
    return this.#closeStream();
  }

  #closeStream(): Promise<void> {
    this.#shutdown ??= this.#channel.close(this.#closeTimeoutMs);
    return this.#shutdown;
  }

  async #drain(): Promise<void> {
    const signal = AbortSignal.timeout(this.#stallTimeoutMs);
    try {
      await this.#channel.stream.onDrain({ signal });
    } catch {
      if (signal.aborted && !this.closed) {
        const error = new TimeoutError(`peer ${this.peerId} read nothing for ${this.#stallTimeoutMs} ms; connection closed`);
        this.#onError(error);
        this.#channel.abort(error);
        this.markClosed();
        throw error;
      }
      throw new ConnectionClosedError();
    }
  }

  #pause(): void {
    const stream = this.#channel.stream;
    if (stream.readStatus !== 'readable') return;
    stream.pause();
    void this.inbox.whenBelow(Math.ceil(RECEIVE_HIGH_WATER_MARK / 2)).then(() => {
      if (stream.readStatus === 'paused') stream.resume();
    });
  }
}
