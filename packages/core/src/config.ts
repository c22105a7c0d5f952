import { InvalidConfigError } from './errors.js';
import type { TlsOptions, TransportConfig, TransportMode } from './types.js';

/** Default transport mode of {@link createTransport}. */
export const DEFAULT_MODE: TransportMode = 'dht';
/** Default bound on connecting, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Port a relay URL without one means (`wss://`). */
export const DEFAULT_RELAY_PORT = 443;
/** Largest message relay and DHT connections carry before the sync layer splits it. */
export const DEFAULT_NETWORK_MAX_MESSAGE_SIZE = 1024 * 1024;

const MODES: readonly TransportMode[] = ['dht', 'relay', 'disabled', 'memory'];
const KNOWN_FIELDS = new Set<string>([
  'mode', 'relayUrl', 'timeoutMs', 'encryption', 'peerId', 'hub', 'token', 'tls', 'bootstrap',
  'listen', 'keyFile', 'dhtClientMode', 'protocolPrefix', 'allowPrivateAddresses', 'maxMessageSize', 'onError', 'mailbox',
  'mdns', 'relayService', 'probePeers',
]);

function stringArray(value: unknown, field: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v.length > 0)) {
    throw new InvalidConfigError(field, 'must be an array of non-empty strings');
  }
  return [...value] as string[];
}

function optionalString(value: unknown, field: string): void {
  if (value !== undefined && (typeof value !== 'string' || value.length === 0)) {
    throw new InvalidConfigError(field, 'must be a non-empty string');
  }
}

/** Whether the authority of `text` (`scheme://authority/...`) names a port explicitly. */
function hasExplicitPort(text: string): boolean {
  const authority = (/^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(text)?.[1] ?? '').replace(/^.*@/, '');
  return /:\d+$/.test(authority);
}

/**
 * Normalizes a relay URL: a bare host means `wss://host:443`; `http(s)://` maps to `ws(s)://`;
 * a URL without a port means port 443 whatever its scheme (the relay's default port), so
 * `ws://host` is `ws://host:443`, where `rhizome relay` listens without TLS.
 */
export function normalizeRelayUrl(input: string): string {
  // The same input gives the same string object, and a normalized URL is its own normal form:
  // every transport, link and mailbox of a process that names one relay shares one copy of its
  // URL (not one per replica).
  const known = relayUrls.get(input);
  if (known !== undefined) return known;
  const output = normalizeRelayUrlOnce(input);
  if (relayUrls.size >= RELAY_URL_MEMO) relayUrls.clear();
  relayUrls.set(input, output);
  if (output !== input && !relayUrls.has(output) && normalizeRelayUrlOnce(output) === output) relayUrls.set(output, output);
  return output;
}

/** URLs {@link normalizeRelayUrl} normalized (a small memo of a pure function: a process names a few relays). */
const relayUrls = new Map<string, string>();
const RELAY_URL_MEMO = 64;

function normalizeRelayUrlOnce(input: string): string {
  let text = input.trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) text = `wss://${text}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidConfigError('relayUrl', `'${input}' is not a valid URL`);
  }
  if (url.protocol === 'https:') url.protocol = 'wss:';
  else if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new InvalidConfigError('relayUrl', `scheme must be ws:// or wss://, got '${url.protocol}//'`);
  }
  if (!url.hostname) throw new InvalidConfigError('relayUrl', `'${input}' has no host`);
  // WebSocket clients refuse a URL with a fragment (ws throws a SyntaxError on every attempt).
  if (url.hash !== '' || text.includes('#')) throw new InvalidConfigError('relayUrl', `'${input}' has a #fragment`);
  if (!hasExplicitPort(text)) url.port = String(DEFAULT_RELAY_PORT);
  return url.toString();
}

/**
 * Applies defaults and validates a partial configuration; a bad field is an
 * {@link InvalidConfigError} naming it. Unknown fields are rejected too, so a typo does not
 * silently fall back to a default.
 */
export function resolveTransportConfig(config: Partial<TransportConfig> = {}): TransportConfig {
  if (config === null || typeof config !== 'object') throw new InvalidConfigError('config', 'must be an object');
  for (const key of Object.keys(config)) {
    if (!KNOWN_FIELDS.has(key)) throw new InvalidConfigError(key, 'unknown transport option');
  }
  const mode = config.mode ?? DEFAULT_MODE;
  if (!MODES.includes(mode)) {
    throw new InvalidConfigError('mode', `must be one of ${MODES.join(', ')}; got '${String(mode)}'`);
  }
  const timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new InvalidConfigError('timeoutMs', 'must be a positive number of milliseconds');
  }
  const encryption = config.encryption ?? true;
  if (typeof encryption !== 'boolean') throw new InvalidConfigError('encryption', 'must be a boolean');
  // Sealing happens in the sync layer and cannot be turned off; accepting `false` here and
  // ignoring it would let a caller believe traffic is unsealed (or, worse, sealed when it is not).
  if (!encryption) throw new InvalidConfigError('encryption', 'sealing cannot be turned off: every frame a database sends is sealed');
  for (const f of ['peerId', 'hub', 'token', 'keyFile', 'protocolPrefix'] as const) optionalString(config[f], f);
  for (const f of ['dhtClientMode', 'allowPrivateAddresses', 'mdns', 'relayService', 'probePeers'] as const) {
    if (config[f] !== undefined && typeof config[f] !== 'boolean') throw new InvalidConfigError(f, 'must be a boolean');
  }
  if (config.maxMessageSize !== undefined && (!Number.isInteger(config.maxMessageSize) || config.maxMessageSize < 1024)) {
    throw new InvalidConfigError('maxMessageSize', 'must be an integer of at least 1024');
  }
  if (config.mailbox !== undefined && typeof config.mailbox !== 'boolean') {
    throw new InvalidConfigError('mailbox', 'must be a boolean');
  }
  if (config.onError !== undefined && typeof config.onError !== 'function') {
    throw new InvalidConfigError('onError', 'must be a function');
  }
  const tls = resolveTlsOptions(config.tls);
  const resolved: TransportConfig = { ...config, mode, timeoutMs, encryption };
  if (tls === undefined) delete resolved.tls;
  else resolved.tls = tls;
  const bootstrap = stringArray(config.bootstrap, 'bootstrap');
  const listen = stringArray(config.listen, 'listen');
  if (bootstrap) resolved.bootstrap = bootstrap;
  if (listen) resolved.listen = listen;
  if (mode === 'relay') {
    if (config.relayUrl === undefined) throw new InvalidConfigError('relayUrl', "is required when mode is 'relay'");
    const urls: unknown = config.relayUrl;
    if (typeof urls === 'string') resolved.relayUrl = normalizeRelayUrl(urls);
    else if (Array.isArray(urls) && urls.length > 0 && urls.every((u) => typeof u === 'string')) {
      resolved.relayUrl = (urls as string[]).map((u) => normalizeRelayUrl(u));
    } else throw new InvalidConfigError('relayUrl', 'must be a URL or a non-empty list of URLs');
  }
  return resolved;
}

/**
 * Checks a relay transport's `tls` option up front, so that what `ws` and Node's TLS would refuse (or
 * silently ignore) at every connection attempt, inside the session loop, is an
 * {@link InvalidConfigError} naming the field when the transport is made: an object with only
 * `ca` (PEM text or bytes, or a list of them) and `rejectUnauthorized` (a boolean). A string CA
 * without a PEM block is refused too: Node ignores it, and the relay's certificate is then
 * refused at each attempt as if no CA had been given (the usual slip: a file name for its content).
 * Returns a copy, so a later change to the caller's object changes nothing.
 */
export function resolveTlsOptions(tls: unknown): TlsOptions | undefined {
  if (tls === undefined) return undefined;
  if (tls === null || typeof tls !== 'object' || Array.isArray(tls)) throw new InvalidConfigError('tls', 'must be an object such as { ca }');
  for (const key of Object.keys(tls)) {
    if (key !== 'ca' && key !== 'rejectUnauthorized') {
      throw new InvalidConfigError(`tls.${key}`, 'unknown TLS option: the relay client takes ca and rejectUnauthorized');
    }
  }
  const { ca, rejectUnauthorized } = tls as { ca?: unknown; rejectUnauthorized?: unknown };
  const resolved: TlsOptions = {};
  if (ca !== undefined) {
    for (const one of Array.isArray(ca) ? (ca as unknown[]) : [ca]) {
      if (typeof one === 'string') {
        if (!one.includes('-----BEGIN ')) throw new InvalidConfigError('tls.ca', 'must be PEM text (-----BEGIN CERTIFICATE-----...), not a file name: read the file and pass its content');
      } else if (!(one instanceof Uint8Array)) {
        throw new InvalidConfigError('tls.ca', 'must be PEM text or bytes, or a list of them');
      }
    }
    resolved.ca = Array.isArray(ca) ? [...(ca as Array<string | Uint8Array>)] : (ca as string | Uint8Array);
  }
  if (rejectUnauthorized !== undefined) {
    if (typeof rejectUnauthorized !== 'boolean') throw new InvalidConfigError('tls.rejectUnauthorized', 'must be a boolean');
    resolved.rejectUnauthorized = rejectUnauthorized;
  }
  return Object.keys(resolved).length === 0 ? undefined : resolved;
}
