import { noise } from '@chainsafe/libp2p-noise';
import { autoNAT } from '@libp2p/autonat';
import { circuitRelayServer, circuitRelayTransport, type CircuitRelayService } from '@libp2p/circuit-relay-v2';
import { dcutr } from '@libp2p/dcutr';
import { mdns, type MulticastDNSComponents } from '@libp2p/mdns';
import { identify, type Identify } from '@libp2p/identify';
import type { AbortOptions, Libp2p, PeerDiscovery, PeerId, PrivateKey } from '@libp2p/interface';
import { kadDHT, passthroughMapper, removePrivateAddressesMapper, type KadDHT } from '@libp2p/kad-dht';
import { ping, type Ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { webSockets } from '@libp2p/websockets';
import { createLibp2p } from 'libp2p';
import { rhizomeYamux } from './yamux-window.js';
import {
  kadProtocol,
  mdnsServiceTag,
  RELAY_SERVICE_DATA_LIMIT_BYTES,
  RELAY_SERVICE_DURATION_LIMIT_MS,
  RELAY_SERVICE_MAX_RESERVATIONS,
  PROVIDER_REFRESH_THRESHOLD_MS, PROVIDER_SWEEP_INTERVAL_MS, PROVIDER_VALIDITY_MS } from './options.js';

/** The services of a Rhizome libp2p node. */
export interface RhizomeServices extends Record<string, unknown> {
  dht: KadDHT;
  /** Present on nodes that serve circuit relay v2 (bootstrap nodes, nodes started with `relayService`). */
  relay?: CircuitRelayService;
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
  /** Find peers on the LAN by mDNS. Default false. */
  mdns?: boolean;
  /** Serve circuit relay v2 (reservations and per-connection limits), for peers behind NATs. */
  relayService?: boolean;
  /** Reserve a slot on relays found (listen on `/p2p-circuit`), so peers behind NATs are dialable. */
  relayClient?: boolean;
  /** Called with each peer mDNS finds on the LAN (peer id and addresses). */
  onLanPeer?: (info: { peerId: string; addresses: string[] }) => void;
  /** libp2p's connection monitor pings every connection each 10 s; a ping slower than this (ms) aborts it. */
  pingTimeoutMs: number;
  /**
   * Run libp2p's connection monitor (default true). Rhizome peers turn it off and run their own
   * `LinkMonitor` (link-monitor.ts), which does not ping links their sessions already hear from.
   */
  connectionMonitor?: boolean;
  /** Delay of kad-dht's start-up self-query and first routing-table refresh (ms); 0: at once. Default 0. */
  startupWalkDelayMs?: number;
  /** Answer every yamux data frame with a window update, as @chainsafe/libp2p-yamux does by itself (see yamux-window.ts). Default false. */
  eagerWindowUpdates?: boolean;
}

/** How often mDNS queries the LAN (ms); libp2p's default is 10 s. */
const MDNS_INTERVAL_MS = 2000;

/** @libp2p/mdns under Rhizome's service tag, with each found peer also handed to `onLanPeer`. */
function lanDiscovery(options: NodeOptions): (components: MulticastDNSComponents) => PeerDiscovery {
  const factory = mdns({ serviceTag: mdnsServiceTag(options.protocolPrefix), interval: MDNS_INTERVAL_MS });
  return (components) => {
    const discovery = factory(components);
    discovery.addEventListener('peer', (event) => {
      options.onLanPeer?.({ peerId: event.detail.id.toString(), addresses: event.detail.multiaddrs.map((ma) => ma.toString()) });
    });
    return discovery;
  };
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
  const node = await createLibp2p<RhizomeServices>({
    start: false,
    privateKey: options.privateKey,
    addresses: { listen: options.relayClient ? [...options.listen, '/p2p-circuit'] : options.listen },
    // The circuit relay v2 client on every node: it dials `/p2p-circuit` addresses and, through
    // the `/p2p-circuit` listen address, reserves a slot on a relay it meets (a bootstrap node),
    // so a node behind a NAT gets a relayed address that goes into its provider records.
    transports: [tcp(), webSockets(), circuitRelayTransport({ reservationCompletionTimeout: options.dialTimeoutMs })],
    ...(options.mdns ? { peerDiscovery: [lanDiscovery(options)] } : {}),
    connectionEncrypters: [noise()],
    streamMuxers: [
      rhizomeYamux(
        { streamOptions: { maxStreamWindowSize: STREAM_WINDOW_BYTES, maxReadBufferLength: STREAM_READ_BUFFER_BYTES } },
        !(options.eagerWindowUpdates ?? false),
      ),
    ],
    // The monitor's adaptive ping timeout starts at 5 s: a busy event loop (many nodes in one
    // process, a loaded machine) then cuts healthy connections. Dead peers are still found
    // at once through their sockets closing.
    connectionMonitor: {
      enabled: options.connectionMonitor ?? true,
      pingTimeout: { minTimeout: options.pingTimeoutMs, maxTimeout: Math.max(options.pingTimeoutMs, 60_000) },
    },
    connectionManager: {
      dialTimeout: options.dialTimeoutMs,
      ...(options.inboundConnectionThreshold !== undefined
        ? { inboundConnectionThreshold: options.inboundConnectionThreshold, maxIncomingPendingConnections: 64 }
        : {}),
    },
    services: {
      // identify also reports the address each peer observed us at (what a NAT maps us to).
      identify: identify(),
      ping: ping(),
      // Asks peers to dial our observed addresses back, so the node learns whether it is reachable.
      autonat: autoNAT({ protocolPrefix: options.protocolPrefix.slice(1) }),
      // Upgrades a relayed connection to a direct one by hole punching when it can (see
      // ARCHITECTURE.md § NAT traversal for what works over TCP on Node).
      dcutr: dcutr(),
      ...(options.relayService
        ? {
            relay: circuitRelayServer({
              reservations: {
                maxReservations: RELAY_SERVICE_MAX_RESERVATIONS,
                applyDefaultLimit: true,
                defaultDurationLimit: RELAY_SERVICE_DURATION_LIMIT_MS,
                defaultDataLimit: BigInt(RELAY_SERVICE_DATA_LIMIT_BYTES),
              },
            }),
          }
        : {}),
      dht: kadDHT({
        protocol: kadProtocol(options.protocolPrefix),
        clientMode: options.dhtClientMode,
        peerInfoMapper: options.allowPrivateAddresses ? passthroughMapper : removePrivateAddressesMapper,
        initialQuerySelfInterval: Math.max(100, options.startupWalkDelayMs ?? 0),
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
  skipPingOfConnectedContacts(node);
  if ((options.startupWalkDelayMs ?? 0) > 0) deferStartupRefresh(node, options.startupWalkDelayMs!);
  return node;
}

/** The part of kad-dht 16.4's routing-table refresh that {@link deferStartupRefresh} hooks (not in its public types). */
interface KadTableRefresh {
  routingTableRefresh?: {
    refreshTable?: (force?: boolean, options?: AbortOptions) => void;
    stop?: () => Promise<void> | void;
  };
}

/**
 * kad-dht 16.4 refreshes its routing table as it starts (`RoutingTableRefresh.afterStart`): a
 * lookup of a random key that, like the self-query, links to the peers it asks, and runs as soon
 * as the table has a peer — beside a joiner's first topic lookup and dials (BENCHMARKS.md § DHT
 * join, session 7). This holds that first refresh for `delayMs`; later ones (every 5 min) run as
 * before. If a later kad-dht changes this internal shape, nothing is hooked.
 *
 * @returns true if the refresh was hooked.
 */
export function deferStartupRefresh(node: RhizomeLibp2p, delayMs: number): boolean {
  const refresh = (node.services.dht as unknown as KadTableRefresh).routingTableRefresh;
  const refreshTable = refresh?.refreshTable;
  const stop = refresh?.stop;
  if (refresh === undefined || typeof refreshTable !== 'function' || typeof stop !== 'function') return false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let first = true;
  refresh.refreshTable = function (this: unknown, force?: boolean, options?: AbortOptions): void {
    if (!first) return refreshTable.call(this, force, options);
    first = false;
    timer = setTimeout(() => refreshTable.call(this, force, options), delayMs);
    timer.unref?.();
  };
  refresh.stop = function (this: unknown): Promise<void> | void {
    clearTimeout(timer);
    return stop.call(this);
  };
  return true;
}

/** The part of kad-dht 16.4's routing table that {@link skipPingOfConnectedContacts} hooks (not in its public types). */
interface KadContactCheck {
  routingTable?: { kb?: { verify?: (contact: { peerId: PeerId }, options?: AbortOptions) => Promise<boolean> } };
}

/**
 * kad-dht 16.4 pings every new contact before adding it to its routing table (`verifyNewContact`,
 * not configurable: its `lastPingThreshold` is not passed through, and a new contact's last ping
 * is 0 anyway). A contact that reached us over a connection that is open right now, and just
 * completed identify, is online by the same measure, so the check answers at once for it and
 * pings only contacts the node holds no open, unlimited connection to (peers named in DHT
 * answers). Measured in the 32-replica join (BENCHMARKS.md § DHT join): that ping to the
 * bootstrap node is one of the round trips a joiner's first lookup waits for, since kad-dht holds
 * queries until its routing table has a peer. If a later kad-dht changes this internal shape,
 * nothing is hooked and contacts are pinged as before.
 */
export function skipPingOfConnectedContacts(node: RhizomeLibp2p): boolean {
  const kb = (node.services.dht as unknown as KadContactCheck).routingTable?.kb;
  const verify = kb?.verify;
  if (kb === undefined || typeof verify !== 'function') return false;
  kb.verify = (contact, options) =>
    node.getConnections(contact.peerId).some((link) => link.status === 'open' && link.limits === undefined)
      ? Promise.resolve(true)
      : verify(contact, options);
  return true;
}
