/**
 * Inbound flow control of the relay client: every Connection on the socket has its own bounded
 * inbox, and no Connection can stall the socket (see ARCHITECTURE.md § Relay, The client).
 *
 * The socket is always read. A Connection whose reader falls more than `maxMessages` messages
 * or `maxBytes` bytes behind is closed on its own with {@link SlowConsumerError}
 * (`ERR_SLOW_CONSUMER`): its unread messages are dropped, its reader's next `receive()` rejects
 * with the error, the remote peer sees the pair close (PEER_CLOSED), and `onError` hears about it.
 * Every other Connection of the socket — the database's sessions included — carries on
 * untouched. (The old design paused the whole socket instead: one unread app Connection then
 * stopped every topic and peer, and hid the link from both liveness checks.)
 *
 * @packageDocumentation
 */
import { SlowConsumerError, topicToHex } from '@rhizome/core';

/** Per-Connection bounds on unread inbound data. */
export interface InboundBounds {
  /** Unread messages one Connection may hold. */
  readonly maxMessages: number;
  /** Unread bytes one Connection may hold. */
  readonly maxBytes: number;
}

/** Default bounds: 8,192 messages, 32 MiB — per Connection. */
export const DEFAULT_INBOUND_BOUNDS: InboundBounds = Object.freeze({ maxMessages: 8192, maxBytes: 32 * 1024 * 1024 });

/** What {@link inboundOverflow} needs of a Connection. */
export interface InboxView {
  readonly peerId: string;
  readonly topic: Uint8Array;
  readonly buffered: number;
  readonly bufferedBytes: number;
}

/** The error that closes `conn` if its inbox is past `bounds`, else null. */
export function inboundOverflow(conn: InboxView, bounds: InboundBounds): SlowConsumerError | null {
  const messages = conn.buffered;
  const bytes = conn.bufferedBytes;
  if (messages <= bounds.maxMessages && bytes <= bounds.maxBytes) return null;
  return new SlowConsumerError(
    `connection to ${conn.peerId} on topic ${topicToHex(conn.topic).slice(0, 16)}… closed: its reader fell behind ` +
      `(${messages} unread messages, ${bytes} bytes; bounds ${bounds.maxMessages} / ${bounds.maxBytes})`,
    messages,
    bytes,
  );
}
