import { deriveTopic, generateDatabaseId, topicToHex } from '@rhizome/core';
import type { Command } from 'commander';
import type { Output } from '../output.js';
import type { CommandContext } from '../context.js';

/** `rhizome new-id`: prints a fresh database id (144 random bits, URL-safe). */
export function registerNewId(program: Command, ctx: CommandContext): void {
  program
    .command('new-id')
    .description('print a fresh database id (144 random bits, URL-safe; its topic is public, the id is not)')
    .option('--json', 'print {"id", "topic"} as JSON')
    .addHelpText('after', '\nExample:\n  $ rhizome new-id\n  Jx0u2vQe7bq3H1XyZ9kD4mNa\n  $ ID=$(rhizome new-id) && rhizome put "$ID" note-1 \'{"title":"Hello"}\' --db notes.db\n')
    .action((opts: { json?: boolean }) => {
      const out: Output = ctx.output(opts);
      // Not starting with '-': the id is typed as an argument, where '-x…' would read as an option.
      let id = generateDatabaseId();
      while (id.startsWith('-')) id = generateDatabaseId();
      out.result({ id, topic: topicToHex(deriveTopic(id)) }, id);
    });
}
