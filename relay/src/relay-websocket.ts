/**
 * The relay server's WebSocket class: a `ws` WebSocket that delivers its events to the relay
 * core without EventEmitter listeners ({@link DirectSocket}, direct-socket.ts). Listeners added
 * with `on` still run (after the core), so it stays an ordinary `ws` WebSocket to anyone else.
 *
 * Two more things a relay holding thousands of idle sockets does not pay per socket
 * (BENCHMARKS.md § Issue 12, Session 8 (srvmem)):
 * - With `autoPong: false` in the server's options, `ws` makes no pong-completion closure per
 *   socket (~0.15 KiB with its context and counters); the socket hands each ping to the core,
 *   which charges it to the connection's rate limits and answers it with a pong (a client that
 *   pings without reading what it is sent is cut as a slow consumer, where `ws` counted unanswered
 *   pongs). With `ws`'s default `autoPong: true` nothing changes: `ws` answers, the core never sees it.
 * - With no extension negotiated (the relay turns permessage-deflate off), every socket shares
 *   one frozen empty extensions object instead of an own `{}` (56 B): `ws` only reads it then.
 *
 * @packageDocumentation
 */
import type { ClientRequestArgs } from 'node:http';
import { WebSocket } from 'ws';
import type { DirectEvents, DirectSocket } from './direct-socket.js';

/** The extensions of a socket that negotiated none (see the module description). */
const NO_EXTENSIONS: object = Object.freeze({});

/** The `ws` internals this class reads or replaces (ws 8). */
interface WsInternals {
  _extensions?: object;
  _autoPong?: boolean;
}

/**
 * The relay server's WebSocket class: a `ws` WebSocket with {@link DirectSocket.bindEvents}.
 *
 * @example
 * ```ts
 * const wss = new WebSocketServer({ noServer: true, autoPong: false, WebSocket: RelayWebSocket });
 * wss.handleUpgrade(req, socket, head, (ws) => core.attach(ws, { ip }));
 * ```
 */
export class RelayWebSocket extends WebSocket implements DirectSocket {
  #events: DirectEvents<unknown> | null = null;
  #target: unknown = null;

  // ws's own overloads (a server makes its sockets with `null`): the class stays a `typeof WebSocket`.
  constructor(address: null);
  constructor(address: string | URL, options?: WebSocket.ClientOptions | ClientRequestArgs);
  constructor(address: string | URL, protocols?: string | string[], options?: WebSocket.ClientOptions | ClientRequestArgs);
  constructor(...args: unknown[]) {
    super(...(args as ConstructorParameters<typeof WebSocket>));
    const ws = this as unknown as WsInternals;
    // Before the upgrade completes: `ws` replaces it with its own object when an extension is accepted.
    if (typeof ws._extensions === 'object' && Object.keys(ws._extensions).length === 0) ws._extensions = NO_EXTENSIONS;
  }

  bindEvents<T>(events: DirectEvents<T>, target: T): void {
    this.#events = events as DirectEvents<unknown>;
    this.#target = target;
  }

  // `ws` emits every event with at most two arguments; listeners get exactly the ones given.
  override emit(event: string | symbol, a?: unknown, b?: unknown): boolean {
    const events = this.#events;
    const count = arguments.length - 1;
    if (events === null) return emitListeners(this, count, event, a, b);
    const target = this.#target;
    switch (event) {
      case 'message':
        events.message(target, a as Buffer | ArrayBuffer | Buffer[], b as boolean);
        break;
      case 'ping':
        // Answered by `ws` itself unless the server turned its autoPong off (then: the core decides).
        if ((this as unknown as WsInternals)._autoPong !== true && events.ping(target, a as Buffer)) this.pong(a as Buffer, false);
        return emitListeners(this, count, event, a, b);
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
        return emitListeners(this, count, event, a, b);
    }
    // An `error` nobody else listens to is handled (the core counted it): no throw.
    if (this.listenerCount(event) > 0) emitListeners(this, count, event, a, b);
    return true;
  }
}

const emit = WebSocket.prototype.emit;

/**
 * The listeners' emit, with exactly the arguments given. (A function, not a private method: a
 * private method puts a brand on every instance, one more slot per socket.)
 */
function emitListeners(ws: RelayWebSocket, count: number, event: string | symbol, a: unknown, b: unknown): boolean {
  return count <= 0 ? emit.call(ws, event) : count === 1 ? emit.call(ws, event, a) : emit.call(ws, event, a, b);
}
