// The chaos harness's relay: a real relay process on 127.0.0.1:<port> that the harness SIGKILLs
// and restarts on the same port. Prints `ready <port>` once listening. Runs with the relay's Node
// flags, as `rhizome relay` does (chaos-side.ts passes them; started without them it refuses).
// usage: chaos-relay.ts <port>
import { createRelayServer, missingRelayNodeFlags } from '@rhizome/relay';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('usage: chaos-relay.ts <port>\n');
  process.exit(2);
}
const missing = missingRelayNodeFlags();
if (missing.length > 0) {
  process.stderr.write(`chaos-relay.ts must run with the relay's Node flags (missing ${missing.join(' ')})\n`);
  process.exit(2);
}
const relay = await createRelayServer({ port, host: '127.0.0.1' });
process.stdout.write(`ready ${relay.port}\n`);
process.on('SIGTERM', () => void relay.close().then(() => process.exit(0)));
