/**
 * The relay server's WebSocket class: a `ws` WebSocket that delivers its events to the relay
 * core without EventEmitter listeners ({@link DirectSocket}, direct-socket.ts). Listeners added
 * with `on` still run (after the core), so it stays an ordinary `ws` WebSocket to anyone else.
 *
 * @packageDocumentation
 */
import { WebSocket } from 'ws';
import type { DirectEvents, DirectSocket } from './direct-socket.js';

/** Ends a socket's batch of frames (see {@link RelayWebSocket.send}). */
function uncorkSocket(ws: RelayWebSocket, socket: { uncork(): void }): void {
  ws.uncorked();
  socket.uncork();
}

/**
 * The relay server's WebSocket class: a `ws` WebSocket with {@link DirectSocket.bindEvents},
 * whose frames of one tick leave in one write.
 *
 * @example
 * ```ts
 * const wss = new WebSocketServer({ noServer: true, WebSocket: RelayWebSocket });
 * wss.handleUpgrade(req, socket, head, (ws) => core.attach(ws, { ip }));
 * ```
 */
export class RelayWebSocket extends WebSocket implements DirectSocket {
  #events: DirectEvents<unknown> | null = null;
  #target: unknown = null;
  #corked = false;

  /**
   * Sends like `ws`, except that the frames sent to this socket in one tick (what one read from a
   * client carries to one peer: a pair's opening — window, replica id, step 1, awareness — or a
   * turn's updates) leave in one write at the end of the tick instead of one `writev` each: fewer
   * system calls here, fewer reads for the receiving client. Same frames, same order, same tick.
   */
  override send(data: Parameters<WebSocket['send']>[0], options?: Parameters<WebSocket['send']>[1] | ((err?: Error) => void), cb?: (err?: Error) => void): void {
    if (!this.#corked) this.#cork();
    if (typeof options === 'function') super.send(data, options);
    // `send(data, undefined, cb)` is ws's own signature too: the callback must not be dropped.
    else super.send(data, options ?? {}, cb);
  }

  #cork(): void {
    const socket = (this as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
    if (socket === undefined || this.readyState !== WebSocket.OPEN) return;
    socket.cork();
    this.#corked = true;
    process.nextTick(uncorkSocket, this, socket);
  }

  /** @internal The tick's batch left (see {@link send}). */
  uncorked(): void {
    this.#corked = false;
  }

  bindEvents<T>(events: DirectEvents<T>, target: T): void {
    this.#events = events as DirectEvents<unknown>;
    this.#target = target;
  }

  // `ws` emits every event with at most two arguments; listeners get exactly the ones given.
  override emit(event: string | symbol, a?: unknown, b?: unknown): boolean {
    const events = this.#events;
    const count = arguments.length - 1;
    if (events === null) return this.#emitListeners(count, event, a, b);
    const target = this.#target;
    switch (event) {
      case 'message':
        events.message(target, a as Buffer | ArrayBuffer | Buffer[], b as boolean);
        break;
      case 'pong':
        events.pong(target);
        break;
      case 'close':
        this.#events = null;
        this.#target = null;
        events.close(target);
        break;
      case 'error':
        events.error(target, a as Error & { code?: string });
        break;
      default:
        return this.#emitListeners(count, event, a, b);
    }
    // An `error` nobody else listens to is handled (the core counted it): no throw.
    if (this.listenerCount(event) > 0) this.#emitListeners(count, event, a, b);
    return true;
  }

  #emitListeners(count: number, event: string | symbol, a: unknown, b: unknown): boolean {
    return count <= 0 ? super.emit(event) : count === 1 ? super.emit(event, a) : super.emit(event, a, b);
  }
}
