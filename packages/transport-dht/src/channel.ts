import type { Connection, Stream } from '@libp2p/interface';
import { AbortError, ProtocolError, TimeoutError } from '@rhizome/core';
import { ByteQueue, FRAME_HEADER_LENGTH, HELLO_LENGTH } from './wire.js';

/** Where a {@link StreamChannel} in frame mode hands what it reads. */
export interface FrameSink {
  /** A complete frame's payload (a fresh copy). */
  onFrame(payload: Uint8Array): void;
  /** The stream ended: gracefully (no error) or by reset, abort or connection loss. */
  onEnd(error?: Error): void;
  /** The remote broke the framing (e.g. a frame above the limit); the channel stops reading. */
  onError(error: Error): void;
}

interface PendingRead {
  n: number;
  resolve: (bytes: Uint8Array) => void;
  reject: (error: unknown) => void;
  cleanup: () => void;
}

/**
 * One libp2p stream as Rhizome reads it: received bytes are buffered from the first event
 * (so nothing is lost between the handshake and the frames), served as exact reads during
 * the handshake, then parsed into frames. libp2p 3 streams are event based: `message`
 * events carry chunks, `end` follows the remote's close once the read buffer is empty, and
 * `close` is the unconditional end (with `error` set on reset/abort).
 */
export class StreamChannel {
  readonly stream: Stream;
  /** The libp2p connection the stream runs on, once known (for the connection's path and RTT). */
  link: Connection | undefined;
  readonly #buffer = new ByteQueue();
  readonly #maxFrame: number;
  #mode: 'handshake' | 'frames' | 'done' = 'handshake';
  #pending: PendingRead | null = null;
  #sink: FrameSink | null = null;
  #endError: Error | undefined = undefined;
  #bytesReceived = 0;

  constructor(stream: Stream, maxFrame: number) {
    this.stream = stream;
    this.#maxFrame = maxFrame;
    stream.addEventListener('message', (event) => this.#onData(event.data.subarray()));
    stream.addEventListener('end', () => this.#onEnd(undefined));
    stream.addEventListener('close', (event) => {
      // A graceful close with unread (paused) bytes still delivers them; `end` follows.
      if (event.error !== undefined || stream.readBufferLength === 0) this.#onEnd(event.error);
    });
  }

  /** Bytes received so far. */
  get bytesReceived(): number {
    return this.#bytesReceived;
  }

  /** True once the stream ended or the channel gave up on it. */
  get ended(): boolean {
    return this.#mode === 'done';
  }

  /**
   * Resolves with exactly `n` bytes (handshake phase), rejects with {@link TimeoutError} after
   * `timeoutMs`, with {@link ProtocolError} if the stream ends first, or with
   * {@link AbortError} when `signal` aborts.
   */
  readExact(n: number, timeoutMs: number, what: string, signal?: AbortSignal): Promise<Uint8Array> {
    if (this.#mode !== 'handshake') return Promise.reject(new ProtocolError(`stream ended before ${what}`));
    if (this.#pending) return Promise.reject(new Error('StreamChannel supports one read at a time'));
    const ready = this.#buffer.read(n);
    if (ready) return Promise.resolve(ready);
    if (signal?.aborted) return Promise.reject(new AbortError());
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending = null;
        cleanup();
        reject(new TimeoutError(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const onAbort = (): void => {
        this.#pending = null;
        cleanup();
        reject(new AbortError());
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending = { n, resolve, reject, cleanup };
    });
  }

  /** Switches to frame mode: frames already buffered are handed over at once. */
  startFrames(sink: FrameSink): void {
    if (this.#mode === 'done') {
      sink.onEnd(this.#endError);
      return;
    }
    this.#mode = 'frames';
    this.#sink = sink;
    this.#drainFrames();
  }

  /** Writes bytes (see `Stream.send`): false means wait for `drain`. Throws once the write side closed. */
  send(bytes: Uint8Array): boolean {
    return this.stream.send(bytes);
  }

  /** Closes the writable end after buffered bytes are flushed; aborts if that takes over `timeoutMs`. */
  async close(timeoutMs: number): Promise<void> {
    const stream = this.stream;
    if (stream.writeStatus === 'writable') {
      try {
        await stream.close({ signal: AbortSignal.timeout(timeoutMs) });
      } catch (error) {
        this.abort(error instanceof Error ? error : new TimeoutError('stream close timed out'));
        return;
      }
    }
    if (stream.status === 'closed' || stream.status === 'aborted' || stream.status === 'reset') return;
    // The remote closes its end when it sees ours; one that does not is cut off.
    const timer = setTimeout(() => this.abort(new TimeoutError(`remote did not close within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    stream.addEventListener('close', () => clearTimeout(timer), { once: true });
  }

  /** Resets the stream at once (both directions), discarding unsent and unread bytes. */
  abort(error: Error): void {
    this.stream.abort(error);
    this.#onEnd(error);
  }

  #onData(chunk: Uint8Array): void {
    if (this.#mode === 'done') return;
    this.#bytesReceived += chunk.length;
    this.#buffer.push(chunk);
    if (this.#mode === 'frames') {
      this.#drainFrames();
      return;
    }
    const pending = this.#pending;
    if (pending) {
      const bytes = this.#buffer.read(pending.n);
      if (bytes) {
        this.#pending = null;
        pending.cleanup();
        pending.resolve(bytes);
      }
    }
    // A well-behaved peer sends at most a HELLO (or a status byte and a frame) before the
    // handshake completes; anything beyond is garbage.
    if (this.#buffer.length > HELLO_LENGTH + FRAME_HEADER_LENGTH + this.#maxFrame) {
      this.abort(new ProtocolError(`peer sent ${this.#buffer.length} bytes before the handshake completed`));
    }
  }

  #drainFrames(): void {
    const sink = this.#sink;
    if (!sink) return;
    for (;;) {
      if (this.#mode !== 'frames') return;
      let frame: Uint8Array | null;
      try {
        frame = this.#buffer.readFrame(this.#maxFrame);
      } catch (error) {
        this.#mode = 'done';
        this.#buffer.clear();
        sink.onError(error as Error);
        return;
      }
      if (frame === null) return;
      sink.onFrame(frame);
    }
  }

  #onEnd(error: Error | undefined): void {
    if (this.#mode === 'done') return;
    const wasFrames = this.#mode === 'frames';
    this.#mode = 'done';
    this.#endError = error;
    const pending = this.#pending;
    if (pending) {
      this.#pending = null;
      pending.cleanup();
      pending.reject(new ProtocolError(`stream ended during the handshake${error ? ` (${error.message})` : ''}`));
    }
    this.#buffer.clear();
    if (wasFrames) this.#sink?.onEnd(error);
  }
}
