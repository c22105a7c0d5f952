import { InvalidConfigError } from '@rhizome/core';
import { multiaddr } from '@multiformats/multiaddr';
import { generatePrivateKey, loadOrCreateKeyFile } from './keys.js';
import { createRhizomeNode, type RhizomeLibp2p } from './node.js';
import {
  BOOTSTRAP_INBOUND_CONNECTION_THRESHOLD,
  DEFAULT_LISTEN,
  DEFAULT_PROTOCOL_PREFIX,
  PRIVATE_INBOUND_CONNECTION_THRESHOLD,
  resolveDhtOptions,
} from './options.js';

/** Options of {@link startBootstrapNode}. */
export interface BootstrapNodeOptions {
  /** Multiaddrs to listen on. Default tcp and websockets on 0.0.0.0, ephemeral ports; deployments pick fixed ports, e.g. `/ip4/0.0.0.0/tcp/4001`. */
  listen?: string[];
  /** Key file so the peer id (and so the multiaddrs clients are given) survives restarts. Strongly advised. */
  keyFile?: string;
  /** Protocol prefix; must match the peers'. Default `'/rhizome'`. */
  protocolPrefix?: string;
  /** Keep loopback and private addresses in DHT records (tests, LANs). Default false. */
  allowPrivateAddresses?: boolean;
  /** Other bootstrap nodes to join, so several of them form one DHT. */
  bootstrap?: string[];
  /** Serve circuit relay v2 to peers behind NATs (with reservation and data/duration limits). Default true. */
  relayService?: boolean;
  /** Answer mDNS queries on the LAN. Default false (a bootstrap node is for the internet). */
  mdns?: boolean;
  /** Bound on dialing the other bootstrap nodes, in ms. Default 10000. */
  timeoutMs?: number;
}

/** A running bootstrap node. */
export interface BootstrapNode {
  /** Its peer id. */
  readonly peerId: string;
  /** Its listen addresses, each ending in `/p2p/<peer id>`: what peers pass as `bootstrap`. */
  multiaddrs(): string[];
  /** The libp2p node, for metrics and status displays. */
  readonly libp2p: RhizomeLibp2p;
  /** Stops the node; idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts a DHT server node for deployments: the same libp2p stack as the DHT transport
 * (tcp + websockets, noise, yamux, identify, ping, kad-dht on `${prefix}/kad/1.0.0` in server
 * mode), joining no topic, and by default a circuit relay v2 service with limits, through which
 * peers behind NATs reach each other (and attempt DCUtR hole punching). Peers given its multiaddrs as `bootstrap` find each other through it.
 * It stores provider records (topics, peer ids, addresses), never database content.
 *
 * @example
 * ```ts
 * const node = await startBootstrapNode({ listen: ['/ip4/0.0.0.0/tcp/4001'], keyFile: 'bootstrap.key' });
 * console.log(node.multiaddrs().join('\n'));
 * ```
 */
export async function startBootstrapNode(options: BootstrapNodeOptions = {}): Promise<BootstrapNode> {
  const resolved = resolveDhtOptions({
    listen: options.listen ?? [...DEFAULT_LISTEN],
    protocolPrefix: options.protocolPrefix ?? DEFAULT_PROTOCOL_PREFIX,
    allowPrivateAddresses: options.allowPrivateAddresses ?? false,
    bootstrap: options.bootstrap ?? [],
    ...(options.keyFile !== undefined ? { keyFile: options.keyFile } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
  });
  const privateKey = resolved.keyFile !== undefined ? loadOrCreateKeyFile(resolved.keyFile) : generatePrivateKey();
  const node = await createRhizomeNode({
    privateKey,
    listen: resolved.listen,
    protocolPrefix: resolved.protocolPrefix,
    dhtClientMode: false,
    allowPrivateAddresses: resolved.allowPrivateAddresses,
    dialTimeoutMs: resolved.handshakeTimeoutMs,
    pingTimeoutMs: resolved.timeoutMs,
    mdns: options.mdns ?? false,
    relayService: options.relayService ?? true,
    relayClient: false,
    inboundConnectionThreshold: resolved.allowPrivateAddresses ? PRIVATE_INBOUND_CONNECTION_THRESHOLD : BOOTSTRAP_INBOUND_CONNECTION_THRESHOLD,
  });
  try {
    await node.start();
  } catch (error) {
    await Promise.resolve(node.stop()).catch(() => {});
    throw new InvalidConfigError('listen', `cannot listen on ${resolved.listen.join(', ')}: ${(error as Error).message}`);
  }
  // Other bootstrap nodes: best effort, a node that is down now is found later through peers.
  await Promise.allSettled(
    resolved.bootstrap.map((addr) => node.dial(multiaddr(addr), { signal: AbortSignal.timeout(resolved.handshakeTimeoutMs) })),
  );
  let stopping: Promise<void> | null = null;
  return {
    peerId: node.peerId.toString(),
    multiaddrs: () => node.getMultiaddrs().map((ma) => ma.toString()),
    libp2p: node,
    stop: () => (stopping ??= Promise.resolve(node.stop())),
  };
}
