#!/usr/bin/env node
// rhizome-relay: runs a relay until SIGTERM / SIGINT, then closes clients with 1001 and exits 0.
// Exit codes: 0 clean stop, 1 runtime failure (cannot listen, ...), 2 bad arguments.
// It runs with the relay's Node flags (node-flags.ts: a small young generation): started without
// them, it re-launches itself with them first, before loading the relay.
import { relaunchWithRelayNodeFlags } from './node-flags.js';

async function main(): Promise<number> {
  const relaunched = relaunchWithRelayNodeFlags();
  if (relaunched !== undefined) return relaunched;
  const { RhizomeError } = await import('@rhizome/core');
  const { parseRelayArgs, RELAY_USAGE } = await import('./args.js');
  const { createRelayServer } = await import('./server.js');
  let options;
  try {
    options = parseRelayArgs(process.argv.slice(2), process.env);
  } catch (error) {
    console.error(`rhizome relay: ${(error as Error).message}\n\n${RELAY_USAGE}`);
    return 2;
  }
  if (options === 'help') {
    console.log(RELAY_USAGE);
    return 0;
  }
  let relay;
  try {
    relay = await createRelayServer(options);
  } catch (error) {
    const code = error instanceof RhizomeError ? ` [${error.code}]` : '';
    console.error(`rhizome relay: ${(error as Error).message}${code}`);
    return error instanceof RhizomeError && error.code === 'ERR_INVALID_CONFIG' ? 2 : 1;
  }
  console.log(`rhizome relay listening on ${relay.url} (healthz: ${relay.url.replace(/^ws/, 'http')}/healthz)`);
  await new Promise<void>((resolve) => {
    // The first stop signal starts the stop; later ones are ignored until the process exits, so
    // a second one cannot kill it halfway through closing its clients: a terminal's Ctrl-C
    // reaches this process twice when it runs as the child of its re-launch (once from the
    // terminal, once passed on by the launcher, which gets it too).
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      console.log(`rhizome relay: ${signal}, closing clients (1001) and stopping`);
      resolve();
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  await relay.close();
  console.log('rhizome relay: stopped');
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error('rhizome relay: unexpected failure', error);
    process.exitCode = 1;
  },
);
