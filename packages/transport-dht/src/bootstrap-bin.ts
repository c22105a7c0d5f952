// A DHT bootstrap node: `node --import tsx packages/transport-dht/src/bootstrap-bin.ts
//   [--listen MULTIADDR]... [--key-file FILE] [--protocol-prefix /rhizome] [--allow-private]
//   [--bootstrap MULTIADDR]...`
// Prints its multiaddrs, one a line, then runs until SIGINT/SIGTERM. Exit codes: 0 stopped,
// 1 failed to start, 2 bad arguments. `rhizome dht-bootstrap` wraps the same function.
import { parseArgs } from 'node:util';
import { RhizomeError } from '@rhizome/core';
import { startBootstrapNode, type BootstrapNodeOptions } from './bootstrap.js';

const USAGE = `usage: dht-bootstrap [--listen MULTIADDR]... [--key-file FILE] [--protocol-prefix PREFIX]
                     [--allow-private] [--bootstrap MULTIADDR]...
Runs a Rhizome DHT bootstrap node and prints its multiaddrs.\n`;

const OPTIONS = {
  listen: { type: 'string', multiple: true },
  'key-file': { type: 'string' },
  'protocol-prefix': { type: 'string' },
  'allow-private': { type: 'boolean' },
  bootstrap: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const;
let values: ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];
try {
  values = parseArgs({ options: OPTIONS, allowPositionals: false }).values;
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const options: BootstrapNodeOptions = {};
if (values.listen) options.listen = values.listen;
if (values['key-file'] !== undefined) options.keyFile = values['key-file'];
if (values['protocol-prefix'] !== undefined) options.protocolPrefix = values['protocol-prefix'];
if (values['allow-private']) options.allowPrivateAddresses = true;
if (values.bootstrap) options.bootstrap = values.bootstrap;

try {
  const node = await startBootstrapNode(options);
  process.stdout.write(`${node.multiaddrs().join('\n')}\n`);
  const stop = (): void => {
    node.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} catch (error) {
  const code = error instanceof RhizomeError ? ` (${error.code})` : '';
  process.stderr.write(`dht-bootstrap: ${(error as Error).message}${code}\n`);
  process.exit(error instanceof RhizomeError && error.code === 'ERR_INVALID_CONFIG' ? 2 : 1);
}
