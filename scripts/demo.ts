// `npm start`: Rhizome end to end on this machine, with nothing to set up. Starts a relay on
// 127.0.0.1 (a free port), opens two replicas ("laptop" and "phone") of one database, each in
// its own SQLite file under ./.rhizome-demo, writes on one and shows the change arriving on the
// other (and concurrent edits merging), then prints where the files are and what to try next.
// It exits 0 by itself; `npm start -- --keep` keeps the relay and both replicas running and
// prints their events until Ctrl-C.
import { mkdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { generateDatabaseId, topicToHex, type JsonValue, type SyncEvent } from '@rhizome/core';
import { createRelayServer } from '@rhizome/relay';
import { openDatabase, type Database } from '@rhizome/sync';

const ROOT = join(import.meta.dirname, '..');
// RHIZOME_DEMO_DIR moves the files elsewhere (the tests use a temp dir).
const DIR = process.env['RHIZOME_DEMO_DIR'] ?? join(ROOT, '.rhizome-demo');
const KEEP = process.argv.includes('--keep');
const WAIT_MS = 15_000;
/** How to run the `rhizome` command from the repository root, with any Node >= 20. */
const CLI = 'node packages/cli/bin/rhizome.js';

/** How to write a demo file's path in a command: relative to the repository when inside it. */
function shown(path: string): string {
  const rel = relative(ROOT, path);
  return rel.startsWith('..') ? path : rel;
}

function say(text = ''): void {
  console.log(text);
}

/** Resolves with the first event of `db` matching `predicate` (bounded by WAIT_MS). */
function nextEvent(db: Database, predicate: (e: SyncEvent) => boolean, what: string): Promise<SyncEvent> {
  const sub = db.events.subscribe();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.unsubscribe();
      reject(new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`));
    }, WAIT_MS);
    void (async () => {
      for await (const e of sub) {
        if (predicate(e)) {
          clearTimeout(timer);
          sub.unsubscribe();
          resolve(e);
          return;
        }
      }
    })();
  });
}

function upserted(id: string, check: (data: Record<string, JsonValue>) => boolean = () => true): (e: SyncEvent) => boolean {
  return (e) => e.type === 'node-upsert' && e.id === id && e.origin === 'remote' && check(e.data);
}

async function main(): Promise<void> {
  mkdirSync(DIR, { recursive: true });
  const files = { laptop: join(DIR, 'laptop.db'), phone: join(DIR, 'phone.db') };
  // A fresh start each run: the demo's files are its own.
  for (const f of Object.values(files)) for (const s of ['', '-wal', '-shm']) rmSync(f + s, { force: true });

  say('Rhizome demo: one relay and two replicas of one database, on this machine.\n');
  const relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
  say(`1. relay listening on ${relay.url}  (it routes sealed frames; it cannot read them)`);

  // An id that does not start with '-', so it can be typed as a command-line argument.
  let id = generateDatabaseId();
  while (id.startsWith('-')) id = generateDatabaseId();
  const transport = { mode: 'relay' as const, relayUrl: relay.url };
  const laptop = await openDatabase({ id, path: files.laptop, transport });
  const phone = await openDatabase({ id, path: files.phone, transport });
  say(`2. database ${id}`);
  say(`   topic    ${topicToHex(laptop.topic)}  (what the relay sees)`);
  say(`   laptop   ${shown(files.laptop)}`);
  say(`   phone    ${shown(files.phone)}`);
  await Promise.all([laptop.whenSynced({ minPeers: 1, timeoutMs: WAIT_MS }), phone.whenSynced({ minPeers: 1, timeoutMs: WAIT_MS })]);
  say('   both replicas joined the topic through the relay and synced\n');

  // A write on one replica arrives on the other.
  let started = performance.now();
  const arrived = nextEvent(phone, upserted('note-1'), 'note-1 on the phone');
  laptop.put('note-1', { title: 'Buy milk', done: false });
  say(`3. laptop: put note-1 ${JSON.stringify(laptop.get('note-1'))}`);
  await arrived;
  say(`   phone:  got note-1 ${JSON.stringify(phone.get('note-1'))}  after ${(performance.now() - started).toFixed(1)} ms\n`);

  // Both edit the same node at once, different fields: both edits survive, everywhere.
  started = performance.now();
  const onLaptop = nextEvent(laptop, upserted('note-1', (d) => d['done'] === true), 'the phone edit on the laptop');
  const onPhone = nextEvent(phone, upserted('note-1', (d) => d['title'] === 'Buy oat milk'), 'the laptop edit on the phone');
  laptop.put('note-1', { title: 'Buy oat milk' });
  phone.put('note-1', { done: true });
  say('4. at the same time: laptop sets title "Buy oat milk", phone sets done: true');
  await Promise.all([onLaptop, onPhone]);
  say(`   laptop: ${JSON.stringify(laptop.get('note-1'))}`);
  say(`   phone:  ${JSON.stringify(phone.get('note-1'))}  (merged in ${(performance.now() - started).toFixed(1)} ms)\n`);

  const stats = relay.stats();
  say(`5. the relay forwarded ${stats.framesOut} frames (${stats.bytesOut} bytes), sealed end to end; it stores nothing.\n`);

  if (KEEP) {
    say(`Running until Ctrl-C. In another terminal, try:`);
    say(`  ${CLI} put ${id} note-2 '{"title":"Hello from the CLI"}' --db ${shown(join(DIR, 'cli.db'))} --relay ${relay.url}`);
    say(`  ${CLI} status ${id} --db ${shown(join(DIR, 'cli.db'))} --relay ${relay.url}\n`);
    for (const [name, db] of [['laptop', laptop], ['phone', phone]] as const) {
      const sub = db.events.subscribe();
      void (async () => {
        for await (const e of sub) {
          if (e.type === 'node-upsert' || e.type === 'node-delete') say(`${name}: ${e.type} ${e.id}${e.type === 'node-upsert' ? ` ${JSON.stringify(e.data)}` : ''} (${e.origin})`);
          else if (e.type === 'peer-connected' || e.type === 'peer-disconnected') say(`${name}: ${e.type} ${e.peerId}`);
        }
      })();
    }
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    say('\nstopping');
  }

  await Promise.all([laptop.close(), phone.close()]);
  await relay.close();

  say('Done. The two SQLite files are still there:');
  say(`  ${shown(files.laptop)}`);
  say(`  ${shown(files.phone)}`);
  say('\nWhat to try next (from the repository root):');
  const tries: Array<[string, string]> = [
    [`${CLI} list ${id} --db ${shown(files.phone)}`, 'read a replica offline'],
    [`${CLI} status ${id} --db ${shown(files.laptop)}`, 'topic, node count, log size'],
    [`${CLI} relay --port 8080 --host 127.0.0.1`, 'terminal 1: a relay of your own'],
    [`${CLI} sync ${id} --db ${shown(files.phone)} --relay ws://127.0.0.1:8080`, 'terminal 2: an always-on replica'],
    [`${CLI} put ${id} note-2 '{"title":"Hello"}' --db ${shown(files.laptop)} --relay ws://127.0.0.1:8080`, 'terminal 3: it shows up in terminal 2'],
    ['npm start -- --keep', 'this demo, left running'],
    ['npm exec -- tsx --conditions=rhizome-source examples/relay-two-peers/main.ts', 'more in examples/'],
  ];
  for (const [command, what] of tries) say(`  ${command}\n      # ${what}`);
}

main().then(
  () => {
    process.exitCode = 0;
  },
  (error: unknown) => {
    const code = (error as { code?: string }).code;
    console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}${code ? ` [${code}]` : ''}`);
    process.exitCode = 1;
  },
);
