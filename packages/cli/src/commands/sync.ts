import { Option, type Command } from 'commander';
import { RhizomeError, topicToHex, type SyncEvent } from '@rhizome/core';
import type { CommandContext } from '../context.js';
import { describeError, usageError } from '../errors.js';
import { addNetworkOptions, describeNetwork, positiveInteger } from '../network.js';
import { clock, formatBytes, type Output } from '../output.js';
import { closeReplica, openReplica, topicHex, type DatabaseFlags, type Replica } from '../replica.js';
import { untilStopSignal } from '../signals.js';
import type { MetricsServer } from '../metrics-server.js';
import { tlsHint } from '../tls-hints.js';

/** Node changes of a first exchange printed one by one (text mode); the rest are counted. */
const FIRST_EXCHANGE_SHOWN = 20;

/** Events buffered for the printer before it reports `lagged`. */
const EVENT_BUFFER = 1 << 17;

/** One event as `rhizome sync --json` prints it (one object per line). */
export type SyncEventJson = Record<string, unknown> & { type: string; time: string };

/** The JSON form of a database event: topics as hex, errors as `{ code, message }`. */
export function eventToJson(event: SyncEvent): SyncEventJson {
  const time = new Date().toISOString();
  switch (event.type) {
    case 'peer-connected':
      return { type: event.type, time, peerId: event.peerId, topic: topicToHex(event.topic) };
    case 'peer-disconnected':
      return { type: event.type, time, peerId: event.peerId, topic: topicToHex(event.topic), ...(event.reason === undefined ? {} : { reason: event.reason }) };
    case 'error':
      return { type: event.type, time, error: { code: event.error.code ?? 'ERR_UNEXPECTED', message: event.error.message } };
    default:
      return { ...event, time };
  }
}

/** The text form of a database event, one line. */
export function eventToText(event: SyncEvent, transport: string): string {
  const t = clock();
  switch (event.type) {
    case 'peer-connected':
      return `${t} peer +    ${event.peerId} connected (${transport})`;
    case 'peer-disconnected':
      return `${t} peer -    ${event.peerId} disconnected${event.reason ? ` (${event.reason})` : ''}`;
    case 'synced':
      return `${t} synced    with ${event.peerId}`;
    case 'node-upsert':
      return `${t} upsert    ${event.id} ${JSON.stringify(event.data)} (${event.origin})`;
    case 'node-delete':
      return `${t} delete    ${event.id} (${event.origin})`;
    case 'error':
      return `${t} error     ${event.error.code ?? 'ERR_UNEXPECTED'}: ${event.error.message}`;
    case 'lagged':
      return `${t} lagged    ${event.missed} events were not shown (output too slow)`;
    case 'peer-health':
      return `${t} health    ${event.peerId} ${event.health} [${event.severity}] ${event.reason}`;
    case 'health':
      return `${t} health    database ${event.health} [${event.severity}] ${event.reason}`;
  }
}

/** Errors printed last, per output: one failure reported by two layers is printed once. */
const lastError = new WeakMap<Output, string>();

function printEvent(out: Output, event: SyncEvent, transport: string): void {
  if (event.type === 'error') {
    const key = `${event.error.code ?? ''} ${event.error.message}`;
    if (lastError.get(out) === key) return;
    lastError.set(out, key);
  }
  if (out.json) out.jsonLine(eventToJson(event));
  else out.line(eventToText(event, transport));
}

/** `rhizome sync`: an always-on replica that prints events as they happen. */
export function registerSync(program: Command, ctx: CommandContext): void {
  const sync = program
    .command('sync')
    .description('run an always-on replica: keeps the database available to other devices and prints events as they happen')
    .argument('<database-id>', 'the database (same id on every replica)')
    .option('--db <file>', 'SQLite file of this replica (created if missing)')
    .option('--json', 'print one JSON object per event, one per line');
  addNetworkOptions(sync, { timeout: false });
  sync.addOption(
    new Option('--timeout <ms>', 'bound on each attempt to reach the network (the replica keeps retrying)').default(10_000).argParser(positiveInteger('--timeout')),
  );
  sync
    .addOption(new Option('--metrics-port <port>', 'serve GET /healthz and GET /metrics (Prometheus) for this replica on PORT (0: any free port)').argParser(metricsPort))
    .option('--metrics-host <host>', 'address for --metrics-port', '127.0.0.1');
  sync
    .addHelpText(
      'after',
      `
Runs until Ctrl-C (SIGINT) or SIGTERM, then flushes and exits 0. The first line is a
"ready" event; then peer-connected, synced, node-upsert, node-delete, peer-disconnected
and error events as they happen.

Examples:
  $ rhizome sync "$ID" --db replica.db --relay wss://relay.example.com
  $ rhizome sync "$ID" --db replica.db --dht --bootstrap /ip4/203.0.113.5/tcp/4001/p2p/12D3KooW...
  $ rhizome sync "$ID" --db replica.db --relay ws://127.0.0.1:8080 --json | jq -c 'select(.type=="node-upsert")'
  $ rhizome sync "$ID" --db replica.db --relay wss://relay.example.com --metrics-port 9464
`,
    )
    .action(async (id: string, opts: DatabaseFlags & { metricsPort?: number; metricsHost: string }) => {
      const out = ctx.output(opts);
      if (opts.relay === undefined && opts.dht !== true) {
        throw usageError('sync needs a network: --relay URL or --dht --bootstrap ADDR', 'Example: rhizome sync "$(rhizome new-id)" --db replica.db --relay wss://relay.example.com (the same id on every replica)');
      }
      const stopping = untilStopSignal();
      const replica = await openReplica(id, opts, out, { create: true });
      const { db, path, network } = replica;
      const transport = db.transport.name;
      // A large buffer: a first exchange may bring tens of thousands of node events at once.
      const events = db.events.subscribe({ capacity: EVENT_BUFFER });
      const where = describeNetwork(network);
      let metrics: MetricsServer | undefined;
      if (opts.metricsPort !== undefined) {
        try {
          // Loaded only when asked for: prom-client and @rhizome/relay's metrics helpers are a
          // few hundred modules that every other command (and `--help`) would pay for at start.
          const { serveReplicaMetrics } = await import('../metrics-server.js');
          metrics = await serveReplicaMetrics(db, { port: opts.metricsPort, host: opts.metricsHost });
        } catch (error) {
          events.unsubscribe();
          await closeReplica(replica);
          throw error;
        }
      }
      out.result(
        { type: 'ready', time: new Date().toISOString(), id, topic: topicHex(db), db: path, network: where, nodes: db.size, ...(metrics ? { metrics: metrics.url } : {}) },
        `${clock()} ready     replica of ${id} in ${path} (${db.size} nodes) via ${where}; topic ${topicHex(db).slice(0, 16)}…; ${metrics ? `metrics on ${metrics.url}/metrics; ` : ''}Ctrl-C to stop`,
      );

      // Progress of the initial exchange with each peer, on a terminal only.
      let remoteUpdates = 0;
      const progress = setInterval(() => {
        const stats = db.stats();
        const pending = stats.peers.filter((p) => !p.synced).length;
        if (pending === 0) out.clearProgress();
        else out.progress(`syncing with ${pending} of ${stats.peers.length} peer(s): ${remoteUpdates} node updates, ${formatBytes(stats.bytesReceived)} in ${stats.framesReceived} frames`);
      }, 250);
      progress.unref();

      // In text mode, node events of a peer's first exchange past the first FIRST_EXCHANGE_SHOWN
      // are summed up in its "synced" line instead of flooding the terminal; --json prints every event. The state follows the
      // event stream (peer-connected ... node events ... synced), not the live session state.
      const firstExchange = new Set<string>();
      let shown = 0;
      let folded = 0;
      const printing = (async (): Promise<void> => {
        for await (const event of events) {
          const remoteNodeEvent = (event.type === 'node-upsert' || event.type === 'node-delete') && event.origin === 'remote';
          if (remoteNodeEvent) remoteUpdates++;
          if (!out.json) {
            if (event.type === 'peer-connected') firstExchange.add(event.peerId);
            if (event.type === 'peer-disconnected') firstExchange.delete(event.peerId);
            if (remoteNodeEvent && firstExchange.size > 0 && ++shown > FIRST_EXCHANGE_SHOWN) {
              folded++;
              continue;
            }
            if (event.type === 'synced' && firstExchange.delete(event.peerId)) {
              shown = 0;
              if (folded > 0) {
                out.line(`${eventToText(event, transport)} (${folded} more node change${folded === 1 ? '' : 's'} received)`);
                folded = 0;
                continue;
              }
            }
          }
          printEvent(out, event, transport);
        }
      })();

      // Say when the network cannot be reached (the transport retries quietly by itself), and
      // give up on a relay that refuses this replica for good (a wrong token).
      const watching = new AbortController();
      const refused = watchReachability(replica, out, watching.signal);
      const signal = await Promise.race([stopping, refused]);
      watching.abort();
      clearInterval(progress);
      out.clearProgress();
      out.note(`${clock()} stopping (${signal}): flushing ${path}`);
      events.unsubscribe();
      await printing;
      await metrics?.close();
      await closeReplica(replica);
      if (signal === 'refused') ctx.exitCode = 1;
      out.result({ type: 'closed', time: new Date().toISOString(), db: path }, `${clock()} closed    ${path}`);
    });
}

/** Parses `--metrics-port` (0 means any free port). */
function metricsPort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n > 65535) throw usageError(`--metrics-port must be a number from 0 to 65535, got '${value}'`);
  return n;
}

/** Waits `ms` unless aborted first. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

/**
 * Asks the transport who is on the topic until that works: each failed attempt (bounded by the
 * transport's timeout) is printed as an `error` event, and the first success after a failure
 * as a note. Resolves `'refused'` when the relay rejects this replica for good
 * (`ERR_RELAY_REJECTED`: the transport stops), never otherwise.
 */
function watchReachability(replica: Replica, out: Output, signal: AbortSignal): Promise<'refused'> {
  const { db, network } = replica;
  const where = describeNetwork(network);
  return new Promise((resolve) => {
    void (async () => {
      let failed = false;
      while (!signal.aborted) {
        try {
          await db.transport.lookup(db.topic);
          if (failed) {
            lastError.delete(out);
            out.note(`${clock()} reached   ${where}`);
          }
          return;
        } catch (error) {
          if (signal.aborted) return;
          const err = error instanceof Error ? (error as Error & { code?: string }) : new Error(String(error));
          printEvent(out, { type: 'error', error: err }, db.transport.name);
          if (error instanceof RhizomeError && (error.code === 'ERR_RELAY_REJECTED' || error.code === 'ERR_TRANSPORT_CLOSED')) {
            out.note(describeError(error).hint ?? 'the network refused this replica');
            resolve('refused');
            return;
          }
          if (!failed) {
            const hint = tlsHint(error, network, replica.tlsCaFile);
            if (hint !== undefined) out.note(hint);
            out.note(`${clock()} still trying to reach ${where} in the background`);
          }
          failed = true;
          await pause(2000, signal);
        }
      }
    })();
  });
}
