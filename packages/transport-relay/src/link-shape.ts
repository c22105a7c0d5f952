/**
 * What a relay link is, whichever WebSocket implementation carries it (link.ts opens one; `net`
 * links are net-link.ts's).
 *
 * @packageDocumentation
 */
import type { TlsOptions } from '@rhizome/core';

/** TLS options for `wss://` in Node (ignored by browsers, which use the system trust store). */
export type LinkTlsOptions = TlsOptions;

/**
 * Which WebSocket implementation a link uses: `'net'`, Rhizome's own client on Node's sockets
 * (net-link.ts; Node's default), `'ws'` (the `ws` package), `'global'` (the platform's WebSocket;
 * browsers' default).
 */
export type WebSocketImplementation = 'net' | 'ws' | 'global';

/** Options of link.ts `openLink`. */
export interface LinkOptions {
  timeoutMs: number;
  tls?: LinkTlsOptions;
  /** Largest message accepted from the relay (net and ws; a browser's WebSocket has its own). */
  maxPayload: number;
  implementation: WebSocketImplementation;
}

/**
 * One open WebSocket to a relay, the same shape for `ws` (Node) and the global WebSocket
 * (browsers): binary frames in and out, `bufferedAmount` and a way to wait for it to fall.
 */
export interface Link {
  readonly url: string;
  /** Bytes handed to `send` and not yet written to the network. */
  readonly bufferedAmount: number;
  /** False once the socket is closing or closed. */
  readonly open: boolean;
  send(frame: Uint8Array): void;
  /** Resolves once `bufferedAmount` is at most `lowWater`, or the link closed. */
  whenDrained(lowWater: number): Promise<void>;
  /** Stops reading from the network (Node only; a no-op in browsers). */
  pause(): void;
  resume(): void;
  close(code: number, reason: string): void;
  /** Drops the socket without a close handshake (a dead link); the handler's `onLinkClose` reports 1006. */
  terminate(): void;
  /**
   * Set by the owner: told of the link's frames and of its close. An object with methods, given
   * the link, rather than two closures per link: the relay transport is the handler of its own
   * links (ARCHITECTURE § Memory of an idle replica).
   */
  handler: LinkHandler;
}

/** Who a {@link Link} reports to (its owner): the link is passed, so one handler serves every link. */
export interface LinkHandler {
  /** A binary frame arrived on `link`. */
  onLinkFrame(link: Link, frame: Uint8Array): void;
  /** `link` closed (`code` 1006 when it was lost without a close frame). Called once. */
  onLinkClose(link: Link, code: number, reason: string): void;
}

/** The handler of a link whose owner set none (yet): drops what it is told. */
export const NO_LINK_HANDLER: LinkHandler = Object.freeze({
  onLinkFrame(): void {},
  onLinkClose(): void {},
});

/** A `whenDrained` caller waiting for the link's buffered bytes to fall to its low-water mark. */
export interface DrainWaiter {
  lowWater: number;
  resolve: () => void;
}

/** Resolves the waiters whose mark `buffered` reached (all of them with `all`); returns those still waiting, or null. */
export function releaseDrainWaiters(waiters: DrainWaiter[], buffered: number, all: boolean): DrainWaiter[] | null {
  const keep: DrainWaiter[] = [];
  for (const w of waiters) {
    if (all || buffered <= w.lowWater) w.resolve();
    else keep.push(w);
  }
  return keep.length > 0 ? keep : null;
}
