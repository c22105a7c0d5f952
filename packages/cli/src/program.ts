import { Command, CommanderError } from 'commander';
import { registerDhtBootstrap } from './commands/dht-bootstrap.js';
import { registerNewId } from './commands/new-id.js';
import { registerNodeCommands } from './commands/nodes.js';
import { registerRelay } from './commands/relay.js';
import { registerStatus } from './commands/status.js';
import { registerSync } from './commands/sync.js';
import { createContext, type CommandContext } from './context.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, describeError, type CliError } from './errors.js';
import { Output, type Streams } from './output.js';

/** Version printed by `rhizome --version`. */
export const VERSION = '0.1.0';

/** Builds the `rhizome` command tree (commander), printing to `ctx.streams`. */
export function createProgram(ctx: CommandContext): Command {
  const json = process.argv.includes('--json');
  const program = new Command('rhizome');
  program
    .description('Rhizome: a local-first database that syncs peer to peer (DHT) or through a relay, sealed end to end.')
    .version(VERSION)
    .exitOverride()
    .showHelpAfterError('(run the command with --help for its options and an example)')
    .configureOutput({
      writeOut: (s) => ctx.streams.stdout.write(s),
      writeErr: (s) => ctx.streams.stderr.write(s),
      outputError: (message, write) => {
        if (json) write(`${JSON.stringify({ error: { code: 'ERR_USAGE', message: message.replace(/^error: /, '').trim() } })}\n`);
        else write(`rhizome: ${message}`);
      },
    })
    .addHelpText(
      'after',
      `
Examples:
  $ rhizome relay --port 8080 --host 127.0.0.1          # a relay for local testing
  $ ID=$(rhizome new-id)
  $ rhizome put "$ID" note-1 '{"title":"Hello"}' --db a.db --relay ws://127.0.0.1:8080
  $ rhizome sync "$ID" --db b.db --relay ws://127.0.0.1:8080  # always-on replica
  $ rhizome list "$ID" --db b.db --json

Exit codes: 0 success, 1 failure, 2 bad usage. Run \`rhizome <command> --help\` for details.`,
    );
  registerRelay(program, ctx);
  registerSync(program, ctx);
  registerNodeCommands(program, ctx);
  registerStatus(program, ctx);
  registerDhtBootstrap(program, ctx);
  registerNewId(program, ctx);
  return program;
}

/**
 * Runs the `rhizome` command line and returns the exit code: 0 success, 1 failure, 2 bad usage.
 * `argv` is as in `process.argv` (node, script, ...arguments).
 */
export async function run(argv: readonly string[], streams: Streams = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const ctx = createContext(streams);
  const program = createProgram(ctx);
  if (argv.length <= 2) {
    program.outputHelp({ error: true });
    return EXIT_USAGE;
  }
  // `relay` parses its own flags (those of @rhizome/relay), help included.
  const args = argv[2] === 'help' && argv[3] === 'relay' ? [...argv.slice(0, 2), 'relay', '--help'] : [...argv];
  try {
    await program.parseAsync(args);
    return ctx.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help asked for (`--help`, `help [command]`) or the version: success.
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return EXIT_OK;
      // commander already printed what was wrong with the command line.
      return EXIT_USAGE;
    }
    const err: CliError = describeError(error);
    new Output(argv.includes('--json'), streams).error(err);
    return err.exitCode === EXIT_USAGE ? EXIT_USAGE : EXIT_FAILURE;
  }
}
