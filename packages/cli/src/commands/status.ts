import { statSync } from 'node:fs';
import { Option, type Command } from 'commander';
import type { StoreStats } from '@rhizome/core';
import type { CommandContext } from '../context.js';
import { describeError } from '../errors.js';
import { addNetworkOptions, describeNetwork, positiveInteger } from '../network.js';
import { formatBytes } from '../output.js';
import { topicHex, withReplica, type DatabaseFlags } from '../replica.js';
import { watchStatus } from './status-watch.js';

/** What `rhizome status --json` prints. */
export interface StatusReport {
  id: string;
  topic: string;
  db: string;
  /** Size of the database file and its WAL, in bytes. */
  fileBytes: number;
  nodes: number;
  /** The persisted update log: updates after the snapshot, their bytes, the snapshot's bytes. */
  log: StoreStats;
  /** `'relay ws://…'`, `'DHT via …'`, or null when local only. */
  network: string | null;
  /** Transport name: `relay`, `dht`, or `disabled` (local only). */
  transport: string;
  /** One entry per remote replica: the transport and path its session uses (`direct`, `holepunched`, `circuit`, `relay`, `memory`), its health, and its round-trip time when measured. */
  peers: Array<{
    peerId: string;
    transport: string;
    path: string;
    synced: boolean;
    bytesReceived: number;
    bytesSent: number;
    rttMs: number | null;
    health: string;
  }>;
}

function fileBytes(path: string): number {
  let total = 0;
  for (const f of [path, `${path}-wal`]) total += statSync(f, { throwIfNoEntry: false })?.size ?? 0;
  return total;
}

/** `rhizome status`: topic, peers and their transports, node count, log size. */
export function registerStatus(program: Command, ctx: CommandContext): void {
  const status = program
    .command('status')
    .description('show a replica: topic, peers and their transports, node count, log size')
    .argument('<database-id>', 'the database')
    .option('--db <file>', 'SQLite file of this replica')
    .option('--json', 'print the status as one JSON object')
    .option('--watch', 'stay connected and refresh a table of peers and their health until Ctrl-C')
    .addOption(new Option('--interval <ms>', 'refresh period of --watch').default(1000).argParser(positiveInteger('--interval')));
  addNetworkOptions(status, { timeout: true });
  status
    .addHelpText(
      'after',
      `
Without a network flag it reads the file only (peers: none). With --relay or --dht it joins
the topic, syncs with the replicas online, and lists them.

Examples:
  $ rhizome status "$ID" --db notes.db
  $ rhizome status "$ID" --db notes.db --relay wss://relay.example.com --json
  $ rhizome status "$ID" --db notes.db --relay wss://relay.example.com --watch
`,
    )
    .action(async (id: string, opts: DatabaseFlags & { watch?: boolean; interval: number }) => {
      const out = ctx.output(opts);
      if (opts.watch === true) {
        const network = opts.relay !== undefined ? `relay ${String(opts.relay)}` : opts.dht === true ? 'DHT' : 'local only';
        await watchStatus(id, opts, out, opts.interval, `${id} via ${network}  (Ctrl-C to stop)`);
        return;
      }
      const report = await withReplica(id, opts, out, ({ db, path, network }): Omit<StatusReport, 'log' | 'fileBytes'> => {
        const stats = db.stats();
        return {
          id,
          topic: topicHex(db),
          db: path,
          nodes: db.size,
          network: network === undefined ? null : describeNetwork(network),
          transport: db.transport.name,
          peers: stats.peers.map((p) => ({
            peerId: p.peerId,
            transport: p.transport,
            path: p.path,
            synced: p.synced,
            bytesReceived: p.bytesReceived,
            bytesSent: p.bytesSent,
            rttMs: p.rttMs,
            health: p.health,
          })),
        };
      });
      // The log's size is the store's business: read it once the database has closed the file.
      let log: StoreStats;
      try {
        const { openSqliteStore } = await import('@rhizome/store-sqlite');
        const store = openSqliteStore(report.db, { integrityCheck: 'none' });
        try {
          log = store.stats(id);
        } finally {
          store.close();
        }
      } catch (error) {
        throw describeError(error);
      }
      const full: StatusReport = { ...report, fileBytes: fileBytes(report.db), log };
      if (out.json) {
        out.jsonLine(full);
        return;
      }
      out.line(`database  ${full.id}`);
      out.line(`topic     ${full.topic}`);
      out.line(`file      ${full.db} (${formatBytes(full.fileBytes)})`);
      out.line(`nodes     ${full.nodes}`);
      out.line(`log       ${log.updates} update(s), ${formatBytes(log.updateBytes)} + snapshot ${formatBytes(log.snapshotBytes)} (seq ${log.lastSeq})`);
      out.line(`network   ${full.network ?? 'none (local only; add --relay URL or --dht to see peers)'}`);
      out.line(`peers     ${full.peers.length}`);
      for (const p of full.peers) {
        const rtt = p.rttMs === null ? '' : `  rtt ${Math.round(p.rttMs)} ms`;
        out.line(`  ${p.peerId}  ${p.transport}/${p.path}  ${p.synced ? 'synced' : 'syncing'}  ${p.health}${rtt}  ${formatBytes(p.bytesReceived)} in, ${formatBytes(p.bytesSent)} out`);
      }
    });
}
