import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import type { JsonValue } from '@rhizome/core';
import type { CommandContext } from '../context.js';
import { CliError, usageError } from '../errors.js';
import { parseNodeData } from '../json.js';
import { addNetworkOptions } from '../network.js';
import { writeLocallyThenDeliver, type Delivery } from '../deliver.js';
import { withReplica, type DatabaseFlags } from '../replica.js';

const NETWORK_NOTE = `
Without --relay or --dht the command works on the file alone. With one, it joins the
database's topic, syncs with the replicas online (bounded by --timeout), acts, lets the
change reach them, and exits.`;

const WRITE_NOTE = `
The change is written to the --db file first, before any network step. With --relay or
--dht it then goes to the replicas online (bounded by --timeout) and the command waits
until they acknowledge it. If the network fails, the change stays in the file and the
command says "saved locally, not delivered: ..." (exit code 0; with --min-peers N,
fewer than N acknowledging peers is exit code 1). It syncs the next time this replica
reaches the others.`;

function delivered(delivery: Delivery): string {
  if (delivery.failure !== undefined || delivery.acknowledged === 0) return '';
  return ` (delivered to ${delivery.acknowledged} peer${delivery.acknowledged === 1 ? '' : 's'})`;
}

/** `peers` that acknowledged; with a network flag, `delivered` says whether the change got out. */
function deliveryJson(delivery: Delivery): { peers: number; delivered?: boolean } {
  return delivery.network ? { peers: delivery.acknowledged, delivered: delivery.failure === undefined } : { peers: delivery.acknowledged };
}

function readData(json: string | undefined, file: string | undefined): { text: string; source: string } {
  if (json !== undefined && file !== undefined) throw usageError('give the JSON either as an argument or with --file, not both');
  if (file !== undefined) {
    try {
      return { text: readFileSync(file === '-' ? 0 : file, 'utf8'), source: file === '-' ? 'standard input' : file };
    } catch (error) {
      throw usageError(`--file: cannot read ${file}: ${(error as Error).message}`);
    }
  }
  if (json === undefined) throw usageError("missing the node's data as JSON", `Example: rhizome put <database-id> note-1 '{"title":"Hello"}' --db notes.db`);
  if (json === '-') return { text: readFileSync(0, 'utf8'), source: 'standard input' };
  return { text: json, source: 'the JSON argument' };
}

/** `rhizome put|get|delete|list`: one-shot node operations on a database file. */
export function registerNodeCommands(program: Command, ctx: CommandContext): void {
  const put = program
    .command('put')
    .description("set fields of a node (fields merge: the node's other fields stay)")
    .argument('<database-id>', 'the database (same id on every replica)')
    .argument('<node-id>', 'the node to write')
    .argument('[json]', "the fields as a JSON object; '-' reads standard input")
    .option('--db <file>', 'SQLite file of this replica (created if missing)')
    .option('--file <file>', "read the JSON from FILE ('-' for standard input)")
    .option('--json', 'print the node after the write as JSON');
  addNetworkOptions(put, { timeout: true });
  put
    .addHelpText(
      'after',
      `${WRITE_NOTE}

Examples:
  $ ID=$(rhizome new-id)      # once; the same id on every replica
  $ rhizome put "$ID" note-1 '{"title":"Hello","done":false}' --db notes.db
  $ echo '{"done":true}' | rhizome put "$ID" note-1 - --db notes.db --relay wss://relay.example.com --min-peers 1
`,
    )
    .action(async (id: string, nodeId: string, json: string | undefined, opts: DatabaseFlags & { file?: string }) => {
      const out = ctx.output(opts);
      const { text, source } = readData(json, opts.file);
      const data = parseNodeData(text, source);
      await writeLocallyThenDeliver(
        ctx,
        id,
        opts,
        out,
        ({ db }) => {
          db.put(nodeId, data);
          return true;
        },
        ({ db, path }, _written, delivery) => {
          const after = db.get(nodeId) ?? data;
          out.result({ id: nodeId, data: after, ...deliveryJson(delivery) }, `put ${nodeId} in ${basename(path)}${delivered(delivery)}: ${JSON.stringify(after)}`);
        },
      );
    });

  const get = program
    .command('get')
    .description("print a node's fields as JSON (exit code 1 when there is no such node)")
    .argument('<database-id>', 'the database')
    .argument('<node-id>', 'the node to read')
    .option('--db <file>', 'SQLite file of this replica')
    .option('--json', 'print {"id", "data"} on one line');
  addNetworkOptions(get, { timeout: true });
  get
    .addHelpText(
      'after',
      `${NETWORK_NOTE}

Examples:
  $ rhizome get "$ID" note-1 --db notes.db
  $ rhizome get "$ID" note-1 --db notes.db --relay wss://relay.example.com --json | jq .data.title
`,
    )
    .action(async (id: string, nodeId: string, opts: DatabaseFlags) => {
      const out = ctx.output(opts);
      await withReplica(id, opts, out, ({ db, path }) => {
        const data = db.get(nodeId);
        if (data === undefined) {
          throw new CliError('ERR_NOT_FOUND', `no node '${nodeId}' in database ${id} (${path})`, {
            hint: `List the nodes with: rhizome list ${id} --db ${opts.db ?? 'FILE'}`,
          });
        }
        out.result({ id: nodeId, data }, JSON.stringify(data, null, 2));
      });
    });

  const del = program
    .command('delete')
    .description('delete a node (deleting a node that is not there is not an error)')
    .argument('<database-id>', 'the database')
    .argument('<node-id>', 'the node to delete')
    .option('--db <file>', 'SQLite file of this replica')
    .option('--json', 'print {"id", "deleted"} as JSON');
  addNetworkOptions(del, { timeout: true });
  del
    .addHelpText('after', `${WRITE_NOTE}\nA node this replica has not seen yet is looked up on the network first.\n\nExample:\n  $ rhizome delete "$ID" note-1 --db notes.db --relay wss://relay.example.com\n`)
    .action(async (id: string, nodeId: string, opts: DatabaseFlags) => {
      const out = ctx.output(opts);
      await writeLocallyThenDeliver(
        ctx,
        id,
        opts,
        out,
        ({ db, network }, phase) => {
          const existed = db.get(nodeId) !== undefined;
          // Not here yet: with a network, sync first, then delete what arrived.
          if (!existed && phase === 'local' && network !== undefined) return undefined;
          if (existed) db.delete(nodeId);
          return existed;
        },
        ({ path }, existed, delivery) => {
          out.result(
            { id: nodeId, deleted: existed, ...deliveryJson(delivery) },
            existed ? `deleted ${nodeId} from ${basename(path)}${delivered(delivery)}` : `no node '${nodeId}' in ${basename(path)}; nothing to delete`,
          );
        },
      );
    });

  const list = program
    .command('list')
    .description('print every node, sorted by id')
    .argument('<database-id>', 'the database')
    .option('--db <file>', 'SQLite file of this replica')
    .option('--json', 'print a JSON array of {"id", "data"}');
  addNetworkOptions(list, { timeout: true });
  list
    .addHelpText('after', `${NETWORK_NOTE}\n\nExamples:\n  $ rhizome list "$ID" --db notes.db\n  $ rhizome list "$ID" --db notes.db --json | jq -r '.[].id'\n`)
    .action(async (id: string, opts: DatabaseFlags) => {
      const out = ctx.output(opts);
      await withReplica(id, opts, out, ({ db, path }) => {
        const nodes: Array<{ id: string; data: Record<string, JsonValue> }> = db.list();
        if (out.json) out.jsonLine(nodes);
        else if (nodes.length === 0) out.note(`no nodes in database ${id} (${path})`);
        else for (const node of nodes) out.line(`${node.id}\t${JSON.stringify(node.data)}`);
      });
    });
}
