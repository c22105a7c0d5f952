import { networkParts, type NetworkConfig, type NetworkFlags } from './network.js';
import { hasNoScheme } from './tls-hints.js';
import type { Output } from './output.js';

/** Stable codes of the CLI's warnings (`{"warning":{"code",...}}` with `--json`). */
export const WARN_WEAK_ID = 'WARN_WEAK_ID';
export const WARN_DHT_NO_BOOTSTRAP = 'WARN_DHT_NO_BOOTSTRAP';
export const WARN_RELAY_SCHEME = 'WARN_RELAY_SCHEME';
export const WARN_DHT_PRIVATE_BOOTSTRAP = 'WARN_DHT_PRIVATE_BOOTSTRAP';

/** Ids shorter than this are warned about (a generated id has 24 characters, 144 bits). */
export const MIN_ID_LENGTH = 16;

/** The DHT transport looks for peers on the local network (mDNS) unless `--no-mdns`. */
export const DHT_LOCAL_DISCOVERY_DEFAULT = true;

/** One part of an id as words are written: `notes`, `Notes`, `NOTES`, `myNotes`, `2024`. */
const WORD = /^(?:(?:[A-Z]?[a-z]{2,})+|[A-Z]{2,}|[a-z])\d*$|^\d+$/;

/**
 * True when `id` reads like words (`my-notes`, `TeamDocs2024`, `correct horse battery`) rather
 * than random characters: such ids are guessed by trying words. A generated id (random base64url)
 * practically never matches (a test checks thousands).
 */
export function looksLikeWords(id: string): boolean {
  const parts = id.split(/[-_.\s/:]+/).filter((p) => p !== '');
  return parts.length > 0 && parts.every((p) => WORD.test(p));
}

/**
 * Why `id` is weak, or `undefined`. The id is the secret (unless `--secret` is given) and, hashed,
 * the public topic: relays and DHT nodes see the topic, so a guessable id is readable by anyone
 * who guesses it (and, with a secret, still shows when its replicas meet).
 */
export function weakIdReason(id: string, hasSecret: boolean): string | undefined {
  const what = hasSecret
    ? 'it names the public topic (relays and DHT nodes see it), so anyone who guesses it can watch when its replicas meet (the data stays sealed with --secret)'
    : 'the id is the secret: whoever knows or guesses it can read and write the database';
  const fix = 'Use a generated id: ID=$(rhizome new-id), the same on every replica.';
  if (id.length < MIN_ID_LENGTH) return `the database id '${id}' is ${id.length} character${id.length === 1 ? '' : 's'} long (fewer than ${MIN_ID_LENGTH}): ${what}. ${fix}`;
  if (looksLikeWords(id)) return `the database id '${id}' looks like words, which are guessed first: ${what}. ${fix}`;
  return undefined;
}

/**
 * True when a multiaddr's host is a loopback, private (RFC 1918, unique-local IPv6), link-local or
 * `localhost` address: one kad-dht drops from the provider records it sends and receives unless
 * `allowPrivateAddresses` is on.
 */
export function isPrivateMultiaddr(multiaddr: string): boolean {
  const m = /^\/(ip4|ip6|dns|dns4|dns6)\/([^/]+)/.exec(multiaddr.trim());
  if (!m) return false;
  const [, proto, host] = m as unknown as [string, string, string];
  if (proto.startsWith('dns')) return host === 'localhost' || host.endsWith('.localhost');
  if (proto === 'ip4') {
    const [a, b] = host.split('.').map(Number) as [number, number];
    return a === 127 || a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254);
  }
  const h = host.toLowerCase();
  return h === '::1' || /^f[cd]/.test(h) || /^fe[89ab]/.test(h);
}

/**
 * Prints the warnings about the command line of a command that opens a database: a weak id, a
 * scheme-less relay URL (which scheme was assumed), `--dht` with no way to find peers, `--dht`
 * through a bootstrap node on a loopback or private address without `--allow-private-addresses`.
 */
export function warnAboutFlags(out: Output, id: string, flags: NetworkFlags & { secret?: string }, network: NetworkConfig | undefined): void {
  const weak = weakIdReason(id, flags.secret !== undefined);
  if (weak !== undefined) out.warning(WARN_WEAK_ID, weak);
  for (const relay of flags.relay ?? []) {
    if (!hasNoScheme(relay)) continue;
    const hostPort = relay.trim().replace(/\/+$/, '');
    out.warning(
      WARN_RELAY_SCHEME,
      `--relay ${relay} has no scheme: assuming wss://${hostPort} (TLS${/:\d+$/.test(hostPort) ? '' : ', port 443'}). For a relay without TLS, such as \`rhizome relay --port 8080\`, write ws://${hostPort}.`,
    );
  }
  // A DHT part with no bootstrap peer and no mDNS finds nobody, unless another transport (a relay)
  // brings the peers.
  const parts = network === undefined ? [] : networkParts(network);
  const dht = parts.find((p) => p.mode === 'dht');
  if (dht !== undefined && dht.allowPrivateAddresses !== true && (dht.bootstrap?.length ?? 0) > 0 && dht.bootstrap!.every(isPrivateMultiaddr)) {
    // kad-dht drops such addresses from provider records: lookups find nobody (mDNS may still meet
    // peers on this network) and each one runs into --timeout, reported as the DHT not reached.
    out.warning(
      WARN_DHT_PRIVATE_BOOTSTRAP,
      `--bootstrap ${dht.bootstrap![0]!} is a loopback or private address, and DHT records leave such addresses out unless every peer runs with --allow-private-addresses: lookups will find no peers. On one machine or a LAN, add --allow-private-addresses here and on the other replicas (and start \`rhizome dht-bootstrap\` with it).`,
    );
  }
  if (dht !== undefined && parts.length === 1 && (dht.bootstrap === undefined || dht.bootstrap.length === 0)) {
    const localDiscovery = dht.mdns ?? DHT_LOCAL_DISCOVERY_DEFAULT;
    if (!localDiscovery) {
      out.warning(
        WARN_DHT_NO_BOOTSTRAP,
        '--dht without --bootstrap, and --no-mdns: this replica knows no DHT node to join through and does not look on the local network, so it finds no peers (only a peer that dials it can sync). Give --bootstrap ADDR, the multiaddr printed by `rhizome dht-bootstrap` or by another replica, or drop --no-mdns.',
      );
    } else {
      out.note(
        'note: --dht without --bootstrap finds peers on this local network only (mDNS); to reach peers elsewhere, give --bootstrap ADDR (from `rhizome dht-bootstrap`) or add --relay URL.',
      );
    }
  }
}
