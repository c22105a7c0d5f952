import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { RhizomeError, TimeoutError, topicToHex, type PeerInfo, type SyncEvent, type Transport, type TransportConfig } from '@rhizome/core';
import type { Database, DatabaseOptions } from '@rhizome/sync';
import { CliError, describeError, usageError } from './errors.js';
import { describeNetwork, networkParts, transportConfigFromFlags, type NetworkConfig, type NetworkFlags } from './network.js';
import { formatBytes, type Output } from './output.js';
import { warnAboutFlags } from './warnings.js';

/** Flags of every command that opens a database file. */
export interface DatabaseFlags extends NetworkFlags {
  db?: string;
  minPeers?: number;
  secret?: string;
  timeout?: number;
  json?: boolean;
}

/** An open database and what the command line asked of it. */
export interface Replica {
  db: Database;
  /** Absolute path of the database file. */
  path: string;
  /** The network configuration, or `undefined` when local only. */
  network: NetworkConfig | undefined;
  /** The `--tls-ca` file, for hints. */
  tlsCaFile?: string | undefined;
}

/** What {@link syncWithPeers} found. */
export interface SyncReport {
  /** Peers found on the topic and synced with. */
  peers: number;
  /** Wire bytes received while syncing. */
  bytesReceived: number;
}

/** Checks the `--db` flag and gives the absolute path. */
export function databasePath(flags: DatabaseFlags, mustExist = false): string {
  if (flags.db === undefined || flags.db === '') {
    throw usageError('missing --db FILE: the SQLite file of this replica', 'Add e.g. --db notes.db (created if missing).');
  }
  const path = resolve(flags.db);
  const stat = statSync(path, { throwIfNoEntry: false });
  if (stat?.isDirectory()) throw usageError(`--db ${flags.db}: is a directory, not a database file`);
  if (!stat && mustExist) {
    throw new CliError('ENOENT', `no database file ${path}`, {
      hint: 'Check --db; a replica file is created by `rhizome put` or `rhizome sync`, or by reading with --relay/--dht.',
    });
  }
  if (!stat) {
    const dir = statSync(resolve(path, '..'), { throwIfNoEntry: false });
    if (!dir?.isDirectory()) {
      throw new CliError('ENOENT', `cannot create database file ${path}: its directory does not exist`, {
        hint: 'Create the directory first, or give --db a path in an existing directory.',
      });
    }
  }
  return path;
}

/** Checks a database id argument. */
export function databaseId(id: string): string {
  if (id.trim() === '') throw usageError('the database id is empty', 'Make one with `rhizome new-id`.');
  return id;
}

/** Opens the database file with the network the flags ask for. Errors come back as {@link CliError}s. */
export async function openReplica(
  id: string,
  flags: DatabaseFlags,
  out: Output,
  options: { create?: boolean; onOpen?: (replica: Replica) => void | Promise<void> } = {},
): Promise<Replica> {
  const network = transportConfigFromFlags(flags);
  warnAboutFlags(out, databaseId(id), flags, network);
  // One-shot commands bound the transport's own waits (relay session, DHT dials) by --timeout,
  // so an unreachable address fails with the transport's message naming it.
  if (network !== undefined && flags.timeout !== undefined) for (const part of networkParts(network)) part.timeoutMs = flags.timeout;
  // Reading a file that is not there would only create an empty one: unless a network is
  // given to fetch from, or the command writes, the file must exist.
  const path = databasePath(flags, options.create !== true && network === undefined);
  const dbOptions: DatabaseOptions = { id: databaseId(id), path };
  if (network !== undefined) dbOptions.transport = network;
  if (flags.secret !== undefined) dbOptions.secret = flags.secret;
  try {
    // Loaded on first use: `--help`, usage errors and `new-id` start without Yjs and SQLite.
    const { openDatabase } = await import('@rhizome/sync');
    const db = await openDatabase(dbOptions);
    const replica: Replica = { db, path, network, tlsCaFile: flags.tlsCa };
    try {
      // Still before any network step: the database joins its topic on a later macrotask.
      await options.onOpen?.(replica);
    } catch (error) {
      await db.close({ flushTimeoutMs: 0 }).catch(() => undefined);
      throw error;
    }
    return replica;
  } catch (error) {
    throw describeError(error);
  }
}

function isConnectFailure(event: SyncEvent): event is Extract<SyncEvent, { type: 'error' }> {
  return event.type === 'error' && event.error instanceof RhizomeError && event.error.code === 'ERR_CONNECT_FAILED';
}

/**
 * Reaches the network once and syncs with the peers on the topic, for one-shot commands: asks
 * the transport who is on the topic (which also proves the relay or bootstrap is reachable),
 * then waits until every peer found is connected and synced. With nobody there it returns at
 * once: the command then works on the local file, and the change syncs later. Rejects with a
 * {@link CliError} naming the address when the network cannot be reached in `timeoutMs`.
 * Shows progress on a terminal.
 */
export async function syncWithPeers(replica: Replica, out: Output, timeoutMs: number, minPeers = 0): Promise<SyncReport> {
  const { db, network } = replica;
  if (network === undefined) return { peers: 0, bytesReceived: 0 };
  const where = describeNetwork(network);
  const events = db.events.subscribe({ capacity: 1 << 17 });
  const deadline = Date.now() + timeoutMs;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let reached = -1;
  let updates = 0;
  const progress = setInterval(() => {
    const stats = db.stats();
    out.progress(`syncing with ${stats.peers.length} peer(s) over ${where}: ${updates} node updates, ${formatBytes(stats.bytesReceived)} in ${stats.framesReceived} frames`);
  }, 200);
  progress.unref();
  const severalRelays = !Array.isArray(network) && Array.isArray(network.relayUrl) && network.relayUrl.length > 1;
  try {
    const failed = (async (): Promise<never> => {
      for await (const event of events) {
        // One transport that cannot connect is fatal only when it is the only one, and only until
        // the lookup answered (later failures are single peers: a stale DHT record, a lost link).
        // With several relays one that refuses is skipped (failover): only the deadline counts.
        if (isConnectFailure(event) && reached < 0 && !Array.isArray(network) && !severalRelays) throw event.error;
        if ((event.type === 'node-upsert' || event.type === 'node-delete') && event.origin === 'remote') updates++;
      }
      throw new CliError('ERR_CLOSED', 'database closed while syncing');
    })();
    const timedOut = new Promise<never>((_, reject) => {
      // A little after the transport's own bound (same --timeout), whose error says more.
      timer = setTimeout(() => reject(new TimeoutError(`could not reach ${where} within ${timeoutMs} ms`)), timeoutMs + 1000);
    });
    const race = <T>(p: Promise<T>): Promise<T> => Promise.race([p, failed, timedOut]);
    failed.catch(() => undefined);
    timedOut.catch(() => undefined);
    // A lookup that timed out (a DHT whose records leave this network's addresses out, a slow
    // walk) does not undo the peers met meanwhile another way (mDNS, a peer that dialled this
    // one): go on with those rather than report the network unreachable.
    const metAnyway = (error: unknown): PeerInfo[] => {
      const met = db.peers();
      if (met.length > 0 && error instanceof RhizomeError && error.code === 'ERR_TIMEOUT') return met;
      throw error;
    };
    // Several transports find the same replicas under different peer ids: count the longest list.
    const parts = (db.transport as Partial<{ parts: ReadonlyArray<{ transport: Transport }> }>).parts;
    let found: PeerInfo[];
    if (parts) {
      let lists: Array<PromiseSettledResult<PeerInfo[]>>;
      try {
        lists = await race(Promise.allSettled(parts.map((p) => p.transport.lookup(db.topic))));
      } catch (error) {
        lists = [{ status: 'fulfilled', value: metAnyway(error) }];
      }
      const ok = lists.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      found = ok.length === 0 ? metAnyway((lists[0] as PromiseRejectedResult).reason) : ok.reduce((a, b) => (b.length > a.length ? b : a), []);
    } else {
      found = await race(db.transport.lookup(db.topic)).catch(metAnyway);
    }
    reached = found.length;
    const want = Math.max(found.length, minPeers);
    if (want > 0) {
      // Wait for every peer found (and for --min-peers); one whose record is stale (a DHT
      // provider gone offline) only costs the rest of the time budget, and the command goes on
      // with those it reached, unless fewer than --min-peers synced.
      await race(db.whenSynced({ minPeers: want, timeoutMs: Math.max(1, deadline - Date.now()) })).catch((error: unknown) => {
        const synced = db.stats().peers.filter((p) => p.synced).length;
        if (!(error instanceof RhizomeError && error.code === 'ERR_TIMEOUT')) throw error;
        if (minPeers > 0 && synced < minPeers) {
          throw new CliError('ERR_TIMEOUT', `--min-peers ${minPeers}: only ${synced} peer(s) on ${where} finished syncing within ${timeoutMs} ms`, {
            hint: 'Start the other replicas (e.g. `rhizome sync`), or raise --timeout.',
            cause: error,
          });
        }
        if (synced === 0) throw error;
        out.note(`reached ${synced} of the ${want} peers found on ${where}.`);
      });
    }
    const stats = db.stats();
    return { peers: db.peers().length, bytesReceived: stats.bytesReceived };
  } catch (error) {
    if (error instanceof CliError) throw error;
    const err = describeError(error, { network, tlsCaFile: replica.tlsCaFile });
    if (err.code === 'ERR_TIMEOUT' && reached > 0) {
      throw new CliError('ERR_TIMEOUT', `found ${reached} peer(s) on ${where}, but none finished syncing within ${timeoutMs} ms`, {
        hint: 'The other replicas may be busy or gone; raise --timeout, or retry.',
        cause: error,
      });
    }
    if (err.code === 'ERR_TIMEOUT' && reached < 0) {
      throw new CliError('ERR_TIMEOUT', `could not reach ${where} within ${timeoutMs} ms`, {
        hint: 'Check the address and that the relay or bootstrap peer is running; raise --timeout on slow networks.',
        cause: error,
      });
    }
    throw err;
  } finally {
    clearTimeout(timer);
    clearInterval(progress);
    events.unsubscribe();
    out.clearProgress();
  }
}

/** Closes a replica, turning a failure into a {@link CliError}. */
export async function closeReplica(replica: Replica): Promise<void> {
  try {
    await replica.db.close();
  } catch (error) {
    throw describeError(error);
  }
}

/**
 * Runs one-shot work on a database: open, sync with the network if one was given, act, close
 * (`close()` lets queued frames leave before it disconnects). The database is closed on every path.
 */
export async function withReplica<T>(
  id: string,
  flags: DatabaseFlags,
  out: Output,
  act: (replica: Replica, report: SyncReport) => T | Promise<T>,
  options: { create?: boolean } = {},
): Promise<T> {
  if (flags.minPeers !== undefined && flags.relay === undefined && flags.dht !== true) {
    throw usageError('--min-peers needs a network: --relay URL or --dht');
  }
  const replica = await openReplica(id, flags, out, options);
  let result: T;
  try {
    const report = await syncWithPeers(replica, out, flags.timeout ?? 15_000, flags.minPeers ?? 0);
    if (replica.network !== undefined && report.peers === 0) {
      out.note(`no other replica is online on ${describeNetwork(replica.network)}; working on ${replica.path} only (it syncs next time).`);
    }
    result = await act(replica, report);
  } catch (error) {
    await replica.db.close().catch(() => undefined);
    throw describeError(error);
  }
  await closeReplica(replica);
  return result;
}

/** Hex of the database topic. */
export function topicHex(db: Database): string {
  return topicToHex(db.topic);
}
