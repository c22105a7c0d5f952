import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import type { TransportConfig } from '@rhizome/core';
import { usageError } from './errors.js';

/** Default bound, in ms, on reaching peers and syncing with them in one-shot commands. */
export const DEFAULT_SYNC_TIMEOUT_MS = 15_000;

/** The network flags shared by `sync`, `put`, `get`, `delete`, `list` and `status`. */
export interface NetworkFlags {
  /** `--relay URL`, repeatable: instances of one scaled-out relay, tried in order (failover). */
  relay?: string[];
  dht?: boolean;
  bootstrap?: string[];
  listen?: string[];
  keyFile?: string;
  token?: string;
  tlsCa?: string;
  allowPrivateAddresses?: boolean;
  /** `--no-mdns` sets false. */
  mdns?: boolean;
}

/** One transport configuration, or several (`--dht` and `--relay` together). */
export type NetworkConfig = Partial<TransportConfig> | Array<Partial<TransportConfig>>;

/** The configurations of a {@link NetworkConfig}, as a list. */
export function networkParts(config: NetworkConfig): Array<Partial<TransportConfig>> {
  return Array.isArray(config) ? config : [config];
}

/** Parses a positive integer option value (commander argParser). */
export function positiveInteger(name: string): (value: string) => number {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
      throw usageError(`${name} must be a positive integer, got '${value}'`);
    }
    return n;
  };
}

/** Parses a TCP port (0 means "any free port"). */
export function portNumber(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n > 65535) throw usageError(`--port must be a number from 0 to 65535, got '${value}'`);
  return n;
}

/** `--tls-ca FILE` must hold a PEM certificate (the relay's own, or the CA that signed it). */
function checkCaFile(file: string, text: string): void {
  const what = "--tls-ca takes the relay's certificate, or the CA certificate that signed it, in PEM";
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    const isKey = /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/.test(text);
    throw usageError(`--tls-ca ${file}: ${isKey ? 'holds a private key, not a certificate' : 'is not a PEM certificate (no -----BEGIN CERTIFICATE----- line)'}`, `${what}.`);
  }
  try {
    new X509Certificate(text);
  } catch (error) {
    throw usageError(`--tls-ca ${file}: the certificate cannot be read: ${(error as Error).message}`, `${what}.`);
  }
}

/** Adds the network flags to a command. */
export function addNetworkOptions(command: Command, options: { timeout: boolean }): Command {
  command
    .option(
      '--relay <url>',
      'sync through the relay at this URL (wss://host, ws://127.0.0.1:8080); repeat it for instances of one scaled-out relay (failover in order)',
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .option('--dht', 'sync peer to peer over the libp2p DHT (give --bootstrap; with --relay too, both are used)')
    .option('--bootstrap <multiaddr...>', 'DHT bootstrap peers (from `rhizome dht-bootstrap`)')
    .option('--listen <multiaddr...>', 'DHT listen addresses (default: tcp and ws on all interfaces, any port)')
    .option('--key-file <file>', 'DHT: keep this peer id across restarts in FILE (created if missing)')
    .addOption(new Option('--token <token>', 'access token the relay requires (env RHIZOME_RELAY_TOKEN)').env('RHIZOME_RELAY_TOKEN'))
    .option('--tls-ca <file>', 'relay: trust this CA certificate (PEM), e.g. for a self-signed relay')
    .option('--allow-private-addresses', 'DHT: keep loopback and LAN addresses in DHT records (tests, LANs)')
    .option('--no-mdns', 'DHT: do not look for peers on the local network by mDNS')
    .addOption(new Option('--secret <secret>', 'seal with this secret instead of the database id (same on every replica)').env('RHIZOME_SECRET'));
  if (options.timeout) {
    command.addOption(
      new Option('--timeout <ms>', 'bound on reaching peers and syncing with them').default(DEFAULT_SYNC_TIMEOUT_MS).argParser(positiveInteger('--timeout')),
    );
    command.addOption(
      new Option('--min-peers <n>', 'wait (within --timeout) until this many peers synced; fail if fewer').argParser(positiveInteger('--min-peers')),
    );
  }
  return command;
}

/**
 * The transport configuration the flags ask for, or `undefined` for local only. Contradictory
 * flags are usage errors.
 */
export function transportConfigFromFlags(flags: NetworkFlags): NetworkConfig | undefined {
  if (flags.relay !== undefined && flags.dht === true) {
    // Both: each remote replica is synced once, over the better path (direct before relayed).
    const { dht: _d, bootstrap: _b, listen: _l, keyFile: _k, allowPrivateAddresses: _a, mdns: _m, ...relayFlags } = flags;
    const { relay: _r, tlsCa: _t, ...dhtFlags } = flags;
    const relay = transportConfigFromFlags(relayFlags) as Partial<TransportConfig>;
    const dht = transportConfigFromFlags(dhtFlags) as Partial<TransportConfig>;
    return [dht, relay];
  }
  if (flags.mdns === false && flags.dht !== true) throw usageError('--no-mdns needs --dht');
  const dhtOnly = (['bootstrap', 'listen', 'keyFile', 'allowPrivateAddresses'] as const).filter((k) => flags[k] !== undefined);
  if (dhtOnly.length > 0 && flags.dht !== true) {
    const flag = { bootstrap: '--bootstrap', listen: '--listen', keyFile: '--key-file', allowPrivateAddresses: '--allow-private-addresses' }[dhtOnly[0] as (typeof dhtOnly)[number]];
    throw usageError(`${flag} needs --dht`);
  }
  if ((flags.tlsCa !== undefined || flags.token !== undefined) && flags.relay === undefined) {
    // A token from the environment is fine without --relay; only an explicit --tls-ca is not.
    if (flags.tlsCa !== undefined) throw usageError('--tls-ca needs --relay');
  }
  if (flags.relay !== undefined) {
    const config: Partial<TransportConfig> = { mode: 'relay', relayUrl: flags.relay.length === 1 ? flags.relay[0]! : flags.relay };
    if (flags.token !== undefined) config.token = flags.token;
    if (flags.tlsCa !== undefined) {
      let ca: string;
      try {
        ca = readFileSync(flags.tlsCa, 'utf8');
      } catch (error) {
        throw usageError(`--tls-ca: cannot read ${flags.tlsCa}: ${(error as Error).message}`);
      }
      checkCaFile(flags.tlsCa, ca);
      config.tls = { ca };
    }
    return config;
  }
  if (flags.dht === true) {
    const config: Partial<TransportConfig> = { mode: 'dht' };
    if (flags.bootstrap !== undefined) config.bootstrap = flags.bootstrap;
    if (flags.listen !== undefined) config.listen = flags.listen;
    if (flags.keyFile !== undefined) config.keyFile = flags.keyFile;
    if (flags.allowPrivateAddresses === true) config.allowPrivateAddresses = true;
    if (flags.mdns === false) config.mdns = false;
    return config;
  }
  return undefined;
}

/** A short description of where a transport configuration connects, for messages. */
export function describeNetwork(config: NetworkConfig | undefined): string {
  if (config === undefined) return 'local only (no network flag)';
  if (Array.isArray(config)) return config.map((c) => describeNetwork(c)).join(' + ');
  if (config.mode === 'relay') return `relay ${[config.relayUrl ?? ''].flat().join(', ')}`;
  if (config.mode === 'dht') return `DHT${config.bootstrap?.length ? ` via ${config.bootstrap.join(', ')}` : ''}`;
  return String(config.mode);
}
