import { parseArgs } from 'node:util';
import { InvalidConfigError } from '@rhizome/core';
import { resolveClusterOptions, type RedisClusterOptions } from './cluster/options.js';
import type { MailboxLimits } from './mailbox/options.js';
import type { RelayServerOptions } from './server.js';

/** Help text of `rhizome relay` / `rhizome-relay`. */
export const RELAY_USAGE = `Usage: rhizome relay [options]

Runs a Rhizome relay (WebSocket; GET /healthz and GET /metrics on the same port). Stateless
unless --mailbox is given.

Options:
  --port N                    TCP port (default 443; 0 picks a free one)
  --host ADDR                 address to bind (default: all interfaces)
  --tls-cert FILE             certificate (PEM) for wss://; needs --tls-key
  --tls-key FILE              private key (PEM) for wss://
  --token TEXT                require this shared token from clients (or RHIZOME_RELAY_TOKEN)
  --trust-proxy               behind a reverse proxy: per-address limits use the last
                              X-Forwarded-For entry (only if every client comes through it)
  --redis URL                 scale out: every relay given the same Redis (redis://host:port)
                              serves every topic together (or RHIZOME_RELAY_REDIS)
  --redis-prefix TEXT         prefix of Redis keys and channels (default rhizome:relay:)
  --redis-ttl-ms N            an instance silent this long is forgotten by the others and its
                              clients' peers see PEER_LEFT (default 5000)
  --max-frame-size BYTES      largest frame (default 1048640)
  --max-topics N              topics per connection (default 1024)
  --max-peers-per-topic N     paired members per topic (default 1000)
  --max-connections N         connections in total (default 10000)
  --max-connections-per-ip N  connections per address (default 256)
  --max-frames-per-second N   per connection (default 5000)
  --frame-burst N             frames allowed in a burst above that rate (default 20000)
  --max-bytes-per-second N    per connection (default 16777216)
  --byte-burst N              bytes allowed in a burst above that rate (default 67108864)
  --max-buffered-bytes N      unread bytes towards one client before it is cut (default 16777216)
  --heartbeat-ms N            ping interval, 0 disables (default 30000)
  --hello-timeout-ms N        time a new connection has to say HELLO (default 10000)
  --upgrade-timeout-ms N      time a new socket has to send its upgrade or HTTP request (default 10000)

Mailbox (offline catch-up; sealed data the relay cannot read, writable only with the database key):
  --mailbox FILE              keep a sealed mailbox per database in this SQLite file
                              (without it the relay keeps nothing on disk); with --redis
                              the mailbox lives in Redis, shared by every instance
  --mailbox-max-bytes N       bytes per mailbox (default 33554432)
  --mailbox-max-entries N     records per mailbox (default 10000)
  --mailbox-max-mailboxes N   mailboxes in total (default 1000); disk stays under
                              max-mailboxes x max-bytes plus SQLite overhead
  --mailbox-max-entry-bytes N largest record (default: --mailbox-max-bytes)
  --mailbox-ttl N             seconds since the last write before a mailbox is deleted (default 2592000)
  --mailbox-writes-per-minute N  per mailbox (default 600)
  --mailbox-write-burst N     writes allowed in a burst above that rate (default 120)
  -h, --help                  this text
`;

const MAILBOX_FLAGS = {
  'mailbox-max-bytes': 'maxMailboxBytes',
  'mailbox-max-entries': 'maxEntries',
  'mailbox-max-mailboxes': 'maxMailboxes',
  'mailbox-max-entry-bytes': 'maxEntryBytes',
  'mailbox-ttl': 'ttlSeconds',
  'mailbox-writes-per-minute': 'writesPerMinute',
  'mailbox-write-burst': 'writeBurst',
} as const;

const INT_FLAGS = {
  'max-frame-size': 'maxFrameSize',
  'max-topics': 'maxTopicsPerConnection',
  'max-peers-per-topic': 'maxPeersPerTopic',
  'max-connections': 'maxConnections',
  'max-connections-per-ip': 'maxConnectionsPerIp',
  'max-frames-per-second': 'maxFramesPerSecond',
  'frame-burst': 'frameBurst',
  'max-bytes-per-second': 'maxBytesPerSecond',
  'byte-burst': 'byteBurst',
  'max-buffered-bytes': 'maxBufferedBytes',
  'heartbeat-ms': 'heartbeatIntervalMs',
  'hello-timeout-ms': 'helloTimeoutMs',
  'upgrade-timeout-ms': 'upgradeTimeoutMs',
} as const;

function integer(flag: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidConfigError(`--${flag}`, `must be a non-negative integer, got '${text}'`);
  return Number(text);
}

/**
 * Parses relay command-line arguments into {@link RelayServerOptions} (or `'help'`).
 * A bad flag throws `ERR_INVALID_CONFIG` naming it. The CLI's `rhizome relay` uses it too.
 */
export function parseRelayArgs(argv: readonly string[], env: Record<string, string | undefined> = {}): RelayServerOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        token: { type: 'string' },
        'trust-proxy': { type: 'boolean' },
        redis: { type: 'string' },
        'redis-prefix': { type: 'string' },
        'redis-ttl-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        mailbox: { type: 'string' },
        ...Object.fromEntries(Object.keys(MAILBOX_FLAGS).map((k) => [k, { type: 'string' as const }])),
        ...Object.fromEntries(Object.keys(INT_FLAGS).map((k) => [k, { type: 'string' as const }])),
      },
    });
  } catch (error) {
    throw new InvalidConfigError('arguments', (error as Error).message);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.help === true) return 'help';
  const options: RelayServerOptions = {};
  if (typeof v.port === 'string') {
    const port = integer('port', v.port);
    if (port > 65535) throw new InvalidConfigError('--port', 'must be at most 65535');
    options.port = port;
  }
  if (typeof v.host === 'string') options.host = v.host;
  const cert = v['tls-cert'];
  const key = v['tls-key'];
  if ((typeof cert === 'string') !== (typeof key === 'string')) {
    throw new InvalidConfigError(typeof cert === 'string' ? '--tls-key' : '--tls-cert', 'wss needs both --tls-cert and --tls-key');
  }
  if (typeof cert === 'string' && typeof key === 'string') options.tls = { cert, key };
  const token = typeof v.token === 'string' ? v.token : env.RHIZOME_RELAY_TOKEN;
  if (token !== undefined && token !== '') options.token = token;
  if (v['trust-proxy'] === true) options.trustProxy = true;
  const redis = typeof v.redis === 'string' ? v.redis : env.RHIZOME_RELAY_REDIS;
  const prefix = v['redis-prefix'];
  const ttl = v['redis-ttl-ms'];
  if (redis !== undefined && redis !== '') {
    const cluster: RedisClusterOptions = { url: redis };
    if (typeof prefix === 'string') cluster.prefix = prefix;
    if (typeof ttl === 'string') cluster.instanceTtlMs = integer('redis-ttl-ms', ttl);
    resolveClusterOptions(cluster);
    options.redis = cluster;
  } else if (typeof prefix === 'string' || typeof ttl === 'string') {
    throw new InvalidConfigError(typeof prefix === 'string' ? '--redis-prefix' : '--redis-ttl-ms', 'needs --redis (or RHIZOME_RELAY_REDIS)');
  }
  for (const [flag, field] of Object.entries(INT_FLAGS)) {
    const text = v[flag];
    if (typeof text === 'string') options[field] = integer(flag, text);
  }
  const mailboxLimits: Partial<MailboxLimits> = {};
  for (const [flag, field] of Object.entries(MAILBOX_FLAGS)) {
    const text = v[flag];
    if (typeof text === 'string') mailboxLimits[field] = integer(flag, text);
  }
  if (typeof v.mailbox === 'string') {
    if (v.mailbox === '') throw new InvalidConfigError('--mailbox', 'needs a file path');
    options.mailbox = { path: v.mailbox, ...mailboxLimits };
  } else if (Object.keys(mailboxLimits).length > 0) {
    throw new InvalidConfigError('--mailbox', 'the --mailbox-* limits need --mailbox FILE');
  }
  return options;
}
