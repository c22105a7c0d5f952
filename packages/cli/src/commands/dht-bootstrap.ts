import type { Command } from 'commander';
import type { BootstrapNodeOptions } from '@rhizome/transport-dht';
import type { CommandContext } from '../context.js';
import { describeError } from '../errors.js';
import { clock } from '../output.js';
import { untilStopSignal } from '../signals.js';

interface DhtBootstrapFlags {
  listen?: string[];
  keyFile?: string;
  protocolPrefix?: string;
  allowPrivateAddresses?: boolean;
  bootstrap?: string[];
  /** `--no-relay-service` sets false. */
  relayService?: boolean;
  json?: boolean;
}

/** `rhizome dht-bootstrap`: runs a DHT server node peers bootstrap from. */
export function registerDhtBootstrap(program: Command, ctx: CommandContext): void {
  program
    .command('dht-bootstrap')
    .description('run a DHT bootstrap node and print the multiaddrs peers pass to --bootstrap')
    .option('--listen <multiaddr...>', 'addresses to listen on (default: tcp and ws on all interfaces, any port)')
    .option('--key-file <file>', 'keep the peer id (and so the multiaddrs) across restarts in FILE (created if missing)')
    .option('--protocol-prefix <prefix>', "protocol prefix, the same on every peer (default '/rhizome')")
    .option('--allow-private-addresses', 'keep loopback and LAN addresses in DHT records (tests, LANs)')
    .option('--bootstrap <multiaddr...>', 'other bootstrap nodes to join, so several form one DHT')
    .option('--no-relay-service', 'do not serve circuit relay v2 to peers behind NATs (on by default, with limits)')
    .option('--json', 'print {"type":"listening","peerId","multiaddrs"} as JSON')
    .addHelpText(
      'after',
      `
It stores provider records (topic, peer id, addresses), never database content. Runs until
Ctrl-C or SIGTERM.

Examples:
  $ rhizome dht-bootstrap --listen /ip4/0.0.0.0/tcp/4001 --key-file bootstrap.key
  $ rhizome sync "$ID" --db notes.db --dht --bootstrap /ip4/203.0.113.5/tcp/4001/p2p/12D3KooW...
`,
    )
    .action(async (opts: DhtBootstrapFlags) => {
      const out = ctx.output(opts);
      const options: BootstrapNodeOptions = {};
      if (opts.listen !== undefined) options.listen = opts.listen;
      if (opts.keyFile !== undefined) options.keyFile = opts.keyFile;
      if (opts.protocolPrefix !== undefined) options.protocolPrefix = opts.protocolPrefix;
      if (opts.allowPrivateAddresses === true) options.allowPrivateAddresses = true;
      if (opts.bootstrap !== undefined) options.bootstrap = opts.bootstrap;
      if (opts.relayService === false) options.relayService = false;
      const stopping = untilStopSignal();
      // Loaded here: libp2p is heavy, and only this command and --dht need it.
      const { startBootstrapNode } = await import('@rhizome/transport-dht');
      let node;
      try {
        node = await startBootstrapNode(options);
      } catch (error) {
        throw describeError(error);
      }
      const addrs = node.multiaddrs();
      out.result({ type: 'listening', peerId: node.peerId, multiaddrs: addrs }, () =>
        [
          `${clock()} DHT bootstrap node ${node.peerId} listening on:`,
          ...addrs.map((a) => `  ${a}`),
          // Peers keep private addresses in their records only with the same flag (else their
          // lookups find nobody on a LAN or one machine).
          `Peers join with: --dht --bootstrap ${addrs[0] ?? '<multiaddr>'}${options.allowPrivateAddresses === true ? ' --allow-private-addresses' : ''}`,
        ].join('\n'),
      );
      const signal = await stopping;
      out.note(`${clock()} ${signal}: stopping`);
      await node.stop();
      out.result({ type: 'stopped' }, `${clock()} bootstrap node stopped`);
    });
}
