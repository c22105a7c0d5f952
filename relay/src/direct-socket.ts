/**
 * Sockets that hand their events straight to the relay core instead of through EventEmitter
 * listeners.
 *
 * An idle relay holds one WebSocket per connection. Four listeners (`message`, `pong`, `close`,
 * `error`) cost each socket a grown `_events` dictionary (~100 B), and finding the connection from
 * a shared listener a WeakMap entry (~30 B): ~0.13 KiB per connection, a third of what the relay
 * keeps above a bare `ws` forwarder (BENCHMARKS.md § Issue 12). The host creates its sockets as
 * `RelayWebSocket` (relay-websocket.ts: `new WebSocketServer({ WebSocket: RelayWebSocket })`);
 * `RelayCore.attach` then binds the connection to it with {@link DirectSocket.bindEvents}. The
 * core needs only this file (no `ws`): any socket with `bindEvents` is served this way.
 *
 * @packageDocumentation
 */

/** Where a {@link DirectSocket} delivers its events: one object per core, `target` per connection. */
export interface DirectEvents<T> {
  message(target: T, data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void;
  /**
   * A WebSocket ping, when the socket leaves answering to the core (`ws`'s `autoPong: false`):
   * true to answer it with a pong, false when the core refused it (and cut the connection).
   */
  ping(target: T, data: Buffer): boolean;
  pong(target: T): void;
  close(target: T): void;
  error(target: T, error: Error & { code?: string }): void;
}

/**
 * A socket that can deliver its events to a {@link DirectEvents} without listeners. The core also
 * hands it the small frames it encodes (plain `Uint8Array`s in V8's heap) without copying them
 * into a `Buffer` first: its `send` must take any `Uint8Array` it is given cheaply
 * (`RelayWebSocket` copies a small one into its own frame buffer).
 */
export interface DirectSocket {
  /** Delivers this socket's events to `events` with `target`, until its `close` event. */
  bindEvents<T>(events: DirectEvents<T>, target: T): void;
}

/** True for a socket that offers {@link DirectSocket.bindEvents}. */
export function isDirectSocket(socket: object): socket is DirectSocket {
  return typeof (socket as Partial<DirectSocket>).bindEvents === 'function';
}
