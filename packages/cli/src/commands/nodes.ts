import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import type { JsonValue } from '@rhizome/core';
import type { CommandContext } from '../context.js';
import { CliError, usageError } from '../errors.js';
import { parseNodeData } from '../json.js';
import { addNetworkOptions } from '../network.js';
import { withReplica, type DatabaseFlags, type SyncReport } from '../replica.js';

const NETWORK_NOTE = `
Without --relay or --dht the command works on the file alone. With one, it joins the
database's topic, syncs with the replicas online (bounded by --timeout), acts, lets the
change reach them, and exits.`;

function synced(report: SyncReport): string {
  return report.peers > 0 ? ` (synced with ${report.peers} peer${report.peers === 1 ? '' : 's'})` : '';
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
      `${NETWORK_NOTE}

Examples:
  $ rhizome put my-notes note-1 '{"title":"Hello","done":false}' --db notes.db
  $ echo '{"done":true}' | rhizome put my-notes note-1 - --db notes.db --relay wss://relay.example.com
`,
    )
    .action(async (id: string, nodeId: string, json: string | undefined, opts: DatabaseFlags & { file?: string }) => {
      const out = ctx.output(opts);
      const { text, source } = readData(json, opts.file);
      const data = parseNodeData(text, source);
      await withReplica(id, opts, out, ({ db, path }, report) => {
        db.put(nodeId, data);
        const after = db.get(nodeId) ?? data;
        out.result({ id: nodeId, data: after, peers: report.peers }, `put ${nodeId} in ${basename(path)}${synced(report)}: ${JSON.stringify(after)}`);
      }, { create: true });
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
  $ rhizome get my-notes note-1 --db notes.db
  $ rhizome get my-notes note-1 --db notes.db --relay wss://relay.example.com --json | jq .data.title
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
    .addHelpText('after', `${NETWORK_NOTE}\n\nExample:\n  $ rhizome delete my-notes note-1 --db notes.db\n`)
    .action(async (id: string, nodeId: string, opts: DatabaseFlags) => {
      const out = ctx.output(opts);
      await withReplica(id, opts, out, ({ db, path }, report) => {
        const existed = db.get(nodeId) !== undefined;
        db.delete(nodeId);
        out.result(
          { id: nodeId, deleted: existed, peers: report.peers },
          existed ? `deleted ${nodeId} from ${basename(path)}${synced(report)}` : `no node '${nodeId}' in ${basename(path)}; nothing to delete`,
        );
      });
    });

  const list = program
    .command('list')
    .description('print every node, sorted by id')
    .argument('<database-id>', 'the database')
    .option('--db <file>', 'SQLite file of this replica')
    .option('--json', 'print a JSON array of {"id", "data"}');
  addNetworkOptions(list, { timeout: true });
  list
    .addHelpText('after', `${NETWORK_NOTE}\n\nExamples:\n  $ rhizome list my-notes --db notes.db\n  $ rhizome list my-notes --db notes.db --json | jq -r '.[].id'\n`)
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
