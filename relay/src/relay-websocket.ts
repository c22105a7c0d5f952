/**
 * The relay server's WebSocket class: a `ws` WebSocket that delivers its events to the relay
 * core without EventEmitter listeners ({@link DirectSocket}, direct-socket.ts). Listeners added
 * with `on` still run (after the core), so it stays an ordinary `ws` WebSocket to anyone else.
 *
 * @packageDocumentation
 */
import { WebSocket } from 'ws';
import type { DirectEvents, DirectSocket } from './direct-socket.js';

/**
 * The relay server's WebSocket class: a `ws` WebSocket with {@link DirectSocket.bindEvents}.
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
