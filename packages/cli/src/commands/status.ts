import { statSync } from 'node:fs';
import type { Command } from 'commander';
import type { StoreStats } from '@rhizome/core';
import type { CommandContext } from '../context.js';
import { describeError } from '../errors.js';
import { addNetworkOptions, describeNetwork } from '../network.js';
import { formatBytes } from '../output.js';
import { topicHex, withReplica, type DatabaseFlags } from '../replica.js';

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
  peers: Array<{ peerId: string; transport: string; synced: boolean; bytesReceived: number; bytesSent: number }>;
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
    .option('--json', 'print the status as one JSON object');
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
`,
    )
    .action(async (id: string, opts: DatabaseFlags) => {
      const out = ctx.output(opts);
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
            transport: db.transport.name,
            synced: p.synced,
            bytesReceived: p.bytesReceived,
            bytesSent: p.bytesSent,
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
        out.line(`  ${p.peerId}  ${p.transport}  ${p.synced ? 'synced' : 'syncing'}  ${formatBytes(p.bytesReceived)} in, ${formatBytes(p.bytesSent)} out`);
      }
    });
}
