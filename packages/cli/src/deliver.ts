import { RhizomeError } from '@rhizome/core';
import type { CommandContext } from './context.js';
import { CliError, EXIT_FAILURE, describeError, usageError } from './errors.js';
import { describeNetwork } from './network.js';
import type { Output } from './output.js';
import { openReplica, syncWithPeers, type DatabaseFlags, type Replica } from './replica.js';

/** How a local write went out to the network. */
export interface Delivery {
  /** A network flag was given. */
  network: boolean;
  /** Peers that acknowledged the write (it is applied there). */
  acknowledged: number;
  /** Why it did not reach the peers asked for (the write is in the file all the same). */
  failure?: CliError;
}

/**
 * A write step: `'local'` runs right after the file opens, before any network step; returning
 * `undefined` there asks to sync with the network first and run again as `'synced'` (e.g. deleting
 * a node this replica has not seen yet), where it must return a result.
 */
export type WriteStep<T> = (replica: Replica, phase: 'local' | 'synced') => T | undefined;

/** Extra bound on the acknowledgements of peers found when no `--min-peers` is given. */
const ACK_BOUND_MS = 5000;

/**
 * Runs a one-shot write the local-first way. The write is made and flushed to the SQLite file
 * right after it opens, before the network is touched (the database joins its topic on a later
 * macrotask). Then, with a network flag, the write goes out: the command reaches the relay or the
 * DHT (bounded by `--timeout`), syncs with the replicas online and waits until they acknowledge
 * it (`db.whenDelivered`), or until `--min-peers` N have. Whatever the network does, the write
 * stays in the file: a failure prints "saved locally, not delivered: ..." and sets exit code 1
 * only when delivery was asked for with `--min-peers`.
 *
 * `report` prints the result (called once, also when delivery failed).
 */
export async function writeLocallyThenDeliver<T>(
  ctx: CommandContext,
  id: string,
  flags: DatabaseFlags,
  out: Output,
  write: WriteStep<T>,
  report: (replica: Replica, result: T, delivery: Delivery) => void,
): Promise<void> {
  const minPeers = flags.minPeers ?? 0;
  if (minPeers > 0 && flags.relay === undefined && flags.dht !== true) {
    throw usageError('--min-peers needs a network: --relay URL or --dht');
  }
  let local: T | undefined;
  const replica = await openReplica(id, flags, out, {
    create: true,
    onOpen: async (opened) => {
      local = write(opened, 'local');
      if (local !== undefined) await opened.db.flush();
    },
  });
  const { db, network, path } = replica;
  const timeoutMs = flags.timeout ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  let result = local;
  const delivery: Delivery = { network: network !== undefined, acknowledged: 0 };
  let flushMs = 0;
  try {
    if (network === undefined) {
      if (result === undefined) result = write(replica, 'synced');
    } else {
      const where = describeNetwork(network);
      let peers = 0;
      try {
        peers = (await syncWithPeers(replica, out, timeoutMs, 0)).peers;
      } catch (error) {
        delivery.failure = notDelivered(describeError(error), path);
      }
      if (result === undefined) {
        // Written only after syncing (the node was not here yet): with the network down there is
        // nothing to act on, which the failure above already says.
        result = write(replica, 'synced');
        if (delivery.failure !== undefined && result === undefined) throw delivery.failure;
        if (result !== undefined) await db.flush();
      }
      const wanted = Math.max(minPeers, peers);
      if (delivery.failure === undefined && wanted > 0) {
        const bound = minPeers > 0 ? Math.max(1, deadline - Date.now()) : Math.max(1, Math.min(deadline - Date.now(), ACK_BOUND_MS));
        try {
          delivery.acknowledged = await db.whenDelivered({ minPeers: wanted, timeoutMs: bound });
        } catch (error) {
          const acknowledged = (error as { acknowledged?: unknown }).acknowledged;
          if (!(error instanceof RhizomeError && error.code === 'ERR_TIMEOUT' && typeof acknowledged === 'number')) throw error;
          delivery.acknowledged = acknowledged;
          if (acknowledged < minPeers) {
            delivery.failure = notDelivered(
              new CliError('ERR_TIMEOUT', `--min-peers ${minPeers}: only ${acknowledged} peer(s) on ${where} acknowledged within ${timeoutMs} ms`, {
                hint: 'Start the other replicas (e.g. `rhizome sync`), or raise --timeout.',
                cause: error,
              }),
              path,
            );
          } else if (acknowledged === 0) {
            delivery.failure = notDelivered(
              new CliError('ERR_TIMEOUT', `${peers} peer(s) on ${where} did not acknowledge within ${bound} ms`, {
                hint: 'The other replicas may be busy or gone; run the command again, or raise --timeout.',
                cause: error,
              }),
              path,
            );
          }
        }
        flushMs = delivery.failure === undefined ? 2000 : 0;
      } else if (delivery.failure === undefined && peers === 0) {
        out.note(`no other replica is online on ${where}; the change is in ${path} and syncs when one is.`);
      }
    }
  } catch (error) {
    await db.close({ flushTimeoutMs: 0 }).catch(() => undefined);
    throw describeError(error);
  }
  try {
    report(replica, result as T, delivery);
  } finally {
    await db.close({ flushTimeoutMs: flushMs }).catch((error: unknown) => {
      throw describeError(error);
    });
  }
  if (delivery.failure !== undefined) {
    // Delivery asked for (--min-peers) and not done: a failure. Otherwise the write is done and
    // will sync later: a warning, exit code 0.
    if (minPeers > 0) {
      out.error(delivery.failure);
      ctx.exitCode = EXIT_FAILURE;
    } else {
      out.warning(delivery.failure.code, delivery.failure.message);
      if (delivery.failure.hint !== undefined) out.note(delivery.failure.hint);
    }
  }
}

/** "saved locally, not delivered: <why>", keeping the code and the hint. */
function notDelivered(error: CliError, path: string): CliError {
  const hint = `The change is saved in ${path}; it reaches the other replicas the next time this one syncs with them (run the command again with the network flag, or keep \`rhizome sync\` running).`;
  return new CliError(error.code, `saved locally, not delivered: ${error.message}`, {
    hint: error.hint === undefined ? hint : `${error.hint} ${hint}`,
    cause: error,
  });
}
