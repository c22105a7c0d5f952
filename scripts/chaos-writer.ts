// A second process on a replica's file, for the chaos harness: opens the same SQLite file as a
// running replica (no network) and puts nodes `<prefix>-<i>`, printing `ack <key>` once each
// write is in SQLite (the next macrotask). The harness may SIGKILL it at any time; the acknowledged
// writes must reach every replica through the replica that shares the file.
// usage: chaos-writer.ts <file> <database-id> <prefix> <count> <compactAfterUpdates>
import { openDatabase } from '@rhizome/sync';

const [path, id, prefix, countText, compactText] = process.argv.slice(2);
if (!path || !id || !prefix) {
  process.stderr.write('usage: chaos-writer.ts <file> <database-id> <prefix> <count> <compactAfterUpdates>\n');
  process.exit(2);
}
const count = Number(countText ?? 100);
const db = await openDatabase({ id, path, persistence: { compactAfterUpdates: Number(compactText ?? 50) } });
process.stdout.write('ready\n');
for (let i = 0; i < count; i++) {
  const key = `${prefix}-${i}`;
  db.put(key, { v: i, by: prefix });
  await new Promise((resolve) => setImmediate(resolve));
  // Acknowledge only what is in SQLite: a failed background write (reported in stats) is retried
  // by flush() until it goes through, as an app that must not lie to its user would do.
  for (let attempt = 0; db.stats().storage.pendingUpdates > 0 || db.stats().storage.health !== 'ok'; attempt++) {
    try {
      await db.flush();
    } catch (error) {
      const e = error as Error & { code?: string };
      process.stdout.write(`error ${e.code ?? e.name} ${e.message.replace(/\n/g, ' ')}\n`);
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 20 * 2 ** attempt)));
    }
  }
  process.stdout.write(`ack ${key}\n`);
}
await db.close();
process.stdout.write('done\n');
