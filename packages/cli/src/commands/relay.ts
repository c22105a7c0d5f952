import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { describeError } from '../errors.js';
import { clock } from '../output.js';
import { untilStopSignal } from '../signals.js';

const RELAY_HELP_TAIL = `  --json                      print one JSON object per line ("listening", "stopped")

It keeps nothing on disk and never sees a database id: it routes sealed frames between the
peers of a topic. Stop it with Ctrl-C or SIGTERM (clients are told 1001, going away).

Examples:
  $ rhizome relay --port 8080 --host 127.0.0.1                 # local testing: ws://127.0.0.1:8080
  $ rhizome relay --port 443 --tls-cert fullchain.pem --tls-key privkey.pem --token "$TOKEN"
  $ curl -s http://127.0.0.1:8080/healthz
`;

/**
 * `rhizome relay`: runs a relay server. Its flags are exactly those of the standalone
 * `rhizome-relay` binary (parsed by `@rhizome/relay`'s `parseRelayArgs`), plus `--json`.
 */
export function registerRelay(program: Command, ctx: CommandContext): void {
  program
    .command('relay')
    .description('run a relay server (port 443 by default; see `rhizome relay --help` for TLS, token and limits)')
    .usage('[--port 443] [--host ADDR] [--tls-cert FILE --tls-key FILE] [--token T] [limits...] [--json]')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[options...]')
    .action(async (args: string[]) => {
      const json = args.includes('--json');
      const out = ctx.output({ json });
      const { createRelayServer, parseRelayArgs, RELAY_USAGE, maxSemiSpaceMiB } = await import('@rhizome/relay');
      const parsed = parseRelayArgs(
        args.filter((a) => a !== '--json'),
        process.env,
      );
      if (parsed === 'help') {
        ctx.streams.stdout.write(`${RELAY_USAGE.trimEnd()}\n${RELAY_HELP_TAIL}`);
        return;
      }
      const stopping = untilStopSignal();
      let relay;
      try {
        relay = await createRelayServer(parsed);
      } catch (error) {
        throw describeError(error);
      }
      const http = relay.url.replace(/^ws/, 'http');
      out.result(
        {
          type: 'listening',
          url: relay.url,
          port: relay.port,
          healthz: `${http}/healthz`,
          metrics: `${http}/metrics`,
          token: parsed.token !== undefined,
          // The relay process: its pid, and the young generation's limit its V8 was given
          // (the launcher starts it with @rhizome/relay's RELAY_NODE_FLAGS; null = V8's default).
          pid: process.pid,
          maxSemiSpaceMiB: maxSemiSpaceMiB() ?? null,
        },
        `${clock()} rhizome relay listening on ${relay.url} (health: ${http}/healthz, metrics: ${http}/metrics)${parsed.token !== undefined ? '; clients need the token' : ''}`,
      );
      const signal = await stopping;
      out.note(`${clock()} ${signal}: closing clients (1001, going away)`);
      const stats = relay.stats();
      await relay.close();
      out.result({ type: 'stopped', stats }, `${clock()} relay stopped`);
    });
}
