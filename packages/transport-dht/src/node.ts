import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify, type Identify } from '@libp2p/identify';
import type { Libp2p, PrivateKey } from '@libp2p/interface';
import { kadDHT, passthroughMapper, removePrivateAddressesMapper, type KadDHT } from '@libp2p/kad-dht';
import { ping, type Ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { webSockets } from '@libp2p/websockets';
import { createLibp2p } from 'libp2p';
import { kadProtocol, PROVIDER_REFRESH_THRESHOLD_MS, PROVIDER_SWEEP_INTERVAL_MS, PROVIDER_VALIDITY_MS } from './options.js';

/** The services of a Rhizome libp2p node. */
export interface RhizomeServices extends Record<string, unknown> {
  dht: KadDHT;
  identify: Identify;
  ping: Ping;
}

/** A libp2p node as Rhizome runs it. */
export type RhizomeLibp2p = Libp2p<RhizomeServices>;

/** What {@link createRhizomeNode} needs. */
export interface NodeOptions {
  privateKey: PrivateKey;
  listen: string[];
  protocolPrefix: string;
  dhtClientMode: boolean;
  allowPrivateAddresses: boolean;
  dialTimeoutMs: number;
  /**
   * Inbound connections accepted per second from one IP address (libp2p's default is 5). Raised
   * for bootstrap nodes and private-address setups, where many peers share one address.
   */
  inboundConnectionThreshold?: number;
  /** Provider record lifetime and sweep interval (defaults {@link PROVIDER_VALIDITY_MS}, {@link PROVIDER_SWEEP_INTERVAL_MS}); tests shorten them. */
  providerValidityMs?: number;
  providerSweepIntervalMs?: number;
  /** libp2p's connection monitor pings every connection each 10 s; a ping slower than this (ms) aborts it. */
  pingTimeoutMs: number;
}

/** Per-stream flow control: a paused stream buffers at most one window, well under the read limit. */
const STREAM_WINDOW_BYTES = 4 * 1024 * 1024;
const STREAM_READ_BUFFER_BYTES = 8 * 1024 * 1024;

/**
 * Builds (without starting) the libp2p node every Rhizome DHT peer and bootstrap node runs:
 * tcp + websockets, noise, yamux, identify, ping, and kad-dht on the private protocol
 * `${prefix}/kad/1.0.0`. Loopback and private addresses are dropped from DHT records unless
 * `allowPrivateAddresses` (tests, LANs).
 */
export async function createRhizomeNode(options: NodeOptions): Promise<RhizomeLibp2p> {
  return createLibp2p<RhizomeServices>({
    start: false,
    privateKey: options.privateKey,
    addresses: { listen: options.listen },
    transports: [tcp(), webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [
      yamux({ streamOptions: { maxStreamWindowSize: STREAM_WINDOW_BYTES, maxReadBufferLength: STREAM_READ_BUFFER_BYTES } }),
    ],
    // The monitor's adaptive ping timeout starts at 5 s: a busy event loop (many nodes in one
    // process, a loaded machine) then cuts healthy connections. Dead peers are still found
    // at once through their sockets closing.
    connectionMonitor: { pingTimeout: { minTimeout: options.pingTimeoutMs, maxTimeout: Math.max(options.pingTimeoutMs, 60_000) } },
    connectionManager: {
      dialTimeout: options.dialTimeoutMs,
      ...(options.inboundConnectionThreshold !== undefined
        ? { inboundConnectionThreshold: options.inboundConnectionThreshold, maxIncomingPendingConnections: 64 }
        : {}),
    },
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: kadProtocol(options.protocolPrefix),
        clientMode: options.dhtClientMode,
        peerInfoMapper: options.allowPrivateAddresses ? passthroughMapper : removePrivateAddressesMapper,
        initialQuerySelfInterval: 100,
        // In kad-dht 16.4 the reprovider's sweep is what expires stored records (its
        // `providers.provideValidity` option is not read): records of other peers older than
        // `validity` are deleted, this node's own are re-provided once older than
        // validity − threshold. Every Rhizome node and bootstrap node runs this configuration.
        reprovide: {
          validity: options.providerValidityMs ?? PROVIDER_VALIDITY_MS,
          threshold: Math.min(PROVIDER_REFRESH_THRESHOLD_MS, (options.providerValidityMs ?? PROVIDER_VALIDITY_MS) / 2),
          interval: options.providerSweepIntervalMs ?? PROVIDER_SWEEP_INTERVAL_MS,
        },
      }),
    },
  });
}
