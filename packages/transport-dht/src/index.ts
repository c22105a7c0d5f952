/**
 * @rhizome/transport-dht: peers find each other by topic on a libp2p Kademlia DHT and sync
 * over libp2p streams (tcp + websockets, noise, yamux, kad-dht, identify, ping).
 * @packageDocumentation
 */
import { type Transport, type TransportConfig } from '@rhizome/core';
import { DhtTransport } from './transport.js';
import type { DhtTransportOptions } from './options.js';

export { DhtTransport, createDhtTransport } from './transport.js';
export { startBootstrapNode } from './bootstrap.js';
export type { RhizomeLibp2p, RhizomeServices } from './node.js';
export type { BootstrapNode, BootstrapNodeOptions } from './bootstrap.js';
export { topicToCid } from './cid.js';
export { loadOrCreateKeyFile } from './keys.js';
export {
  DEFAULT_PROTOCOL_PREFIX,
  DEFAULT_LISTEN,
  DEFAULT_LOOKUP_INTERVAL_MS,
  DEFAULT_REANNOUNCE_INTERVAL_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  PROVIDER_VALIDITY_MS,
  RELAY_SERVICE_MAX_RESERVATIONS,
  RELAY_SERVICE_DURATION_LIMIT_MS,
  RELAY_SERVICE_DATA_LIMIT_BYTES,
  mdnsServiceTag,
  kadProtocol,
  syncProtocol,
} from './options.js';
export type { DhtTransportOptions } from './options.js';
export { HandshakeStatus, WIRE_VERSION, HELLO_LENGTH, FRAME_HEADER_LENGTH, encodeHello, encodeFrame } from './wire.js';
export type { HandshakeStatusCode } from './wire.js';

/**
 * What `createTransport({ mode: 'dht', ... })` of @rhizome/core loads: builds a
 * {@link DhtTransport} from the DHT fields of a `TransportConfig` (bootstrap, listen, keyFile,
 * dhtClientMode, protocolPrefix, allowPrivateAddresses, timeoutMs, maxMessageSize).
 */
export function createTransportFromConfig(config: TransportConfig): Transport {
  const options: DhtTransportOptions = { timeoutMs: config.timeoutMs };
  if (config.bootstrap !== undefined) options.bootstrap = config.bootstrap;
  if (config.listen !== undefined) options.listen = config.listen;
  if (config.keyFile !== undefined) options.keyFile = config.keyFile;
  if (config.dhtClientMode !== undefined) options.dhtClientMode = config.dhtClientMode;
  if (config.protocolPrefix !== undefined) options.protocolPrefix = config.protocolPrefix;
  if (config.allowPrivateAddresses !== undefined) options.allowPrivateAddresses = config.allowPrivateAddresses;
  if (config.maxMessageSize !== undefined) options.maxMessageSize = config.maxMessageSize;
  if (config.onError !== undefined) options.onError = config.onError;
  if (config.mdns !== undefined) options.mdns = config.mdns;
  if (config.relayService !== undefined) options.relayService = config.relayService;
  if (config.probePeers !== undefined) options.probePeers = config.probePeers;
  return new DhtTransport(options);
}
