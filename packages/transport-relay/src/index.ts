/**
 * @rhizome/transport-relay: the WebSocket relay client transport (Node and browsers).
 * `createTransport({ mode: 'relay', relayUrl })` in `@rhizome/core` loads it lazily.
 * The wire protocol and close codes are in `@rhizome/transport-relay/protocol`.
 * @packageDocumentation
 */
import type { Transport, TransportConfig } from '@rhizome/core';
import { InvalidConfigError } from '@rhizome/core';
import { RelayTransport, type RelayTransportOptions } from './transport.js';

export { RelayTransport, RelayConnection } from './transport.js';
export { RelayMailbox } from './mailbox.js';
export type { RelayTransportOptions, RelayTransportState, ReconnectOptions } from './transport.js';
export type { LinkTlsOptions, WebSocketImplementation } from './link.js';
export { RelayRotation } from './failover.js';
export type { BackoffPolicy } from './failover.js';
export { CloseCode, closeCodeName, isFatalCloseCode, PROTOCOL_VERSION } from './protocol.js';
export type { CloseCodeName, RelayRateLimits } from './protocol.js';
export { DEFAULT_INBOUND_BOUNDS } from './flow.js';
export type { InboundBounds } from './flow.js';
export { SendPacer, PACE_RATE_FRACTION, PACE_BURST_FRACTION } from './pacer.js';

/**
 * Builds a {@link RelayTransport} from a resolved core configuration (`relayUrl`, `peerId`,
 * `token`, `timeoutMs`, `tls`, `maxMessageSize`). Core's `createTransport` calls it.
 *
 * @example
 * ```ts
 * const transport = createTransportFromConfig({ mode: 'relay', relayUrl: 'wss://relay.example.com', timeoutMs: 30000, encryption: true });
 * ```
 */
export function createTransportFromConfig(config: TransportConfig): Transport {
  if (config.relayUrl === undefined) throw new InvalidConfigError('relayUrl', "is required when mode is 'relay'");
  const options: RelayTransportOptions = { url: config.relayUrl, timeoutMs: config.timeoutMs };
  if (config.peerId !== undefined) options.peerId = config.peerId;
  if (config.token !== undefined) options.token = config.token;
  if (config.tls !== undefined) options.tls = config.tls;
  if (config.maxMessageSize !== undefined) options.maxMessageSize = config.maxMessageSize;
  if (config.onError !== undefined) options.onError = config.onError;
  if (config.mailbox === false) options.mailbox = false;
  return new RelayTransport(options);
}
