// A replica process of the chaos harness: a database on its own SQLite file, over a real relay,
// driven by lines on stdin; the harness SIGKILLs and restarts it. Every write is acknowledged
// (`ack <key>`) on the next macrotask, when it is in SQLite.
//   put <key> <json>         → db.put, then `ack <key>`
//   text <token> <r>         → insert <token> at token boundary floor(r * boundaries), then `ack <token>`
//   digest                   → `digest <sha256 of the encoded state> <rss bytes> <max queued>`
//   close                    → db.close(), then `closed` and exit 0
// usage: chaos-replica.ts <file> <database-id> <relay-url> <peer-id>
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import * as Y from 'yjs';
import { RelayTransport } from '@rhizome/transport-relay';
import { openDatabase } from '@rhizome/sync';
import type { JsonValue } from '@rhizome/core';

const [path, id, url, peerId] = process.argv.slice(2);
if (!path || !id || !url || !peerId) {
  process.stderr.write('usage: chaos-replica.ts <file> <database-id> <relay-url> <peer-id>\n');
  process.exit(2);
}
const TEXT = 'chaos-text';
const transport = new RelayTransport({ url, peerId, reconnect: { initialDelayMs: 50, maxDelayMs: 500 } });
const db = await openDatabase({ id, path, transport, persistence: { compactAfterUpdates: 100 } });
const out = (line: string): void => void process.stdout.write(`${line}\n`);
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
out('ready');

for await (const line of createInterface({ input: process.stdin })) {
  const [command, a, b] = line.split(' ');
  if (command === 'put' && a && b) {
    db.put(a, JSON.parse(line.slice(5 + a.length)) as Record<string, JsonValue>);
    await tick();
    out(`ack ${a}`);
  } else if (command === 'text' && a && b) {
    const text = db.doc.getText(TEXT);
    const s = text.toString();
    const at = [0];
    for (let i = 0; i < s.length; i++) if (s[i] === ']') at.push(i + 1);
    text.insert(at[Math.min(at.length - 1, Math.floor(Number(b) * at.length))]!, a);
    await tick();
    out(`ack ${a}`);
  } else if (command === 'digest') {
    const state = createHash('sha256').update(Y.encodeStateAsUpdate(db.doc)).digest('hex');
    const queued = Math.max(0, ...db.stats().peers.map((p) => p.queued));
    out(`digest ${state} ${process.memoryUsage.rss()} ${queued}`);
  } else if (command === 'close') {
    await db.close();
    await transport.disconnect();
    out('closed');
    process.exit(0);
  }
}
