// What each remote peer costs an idle replica depends on the shape of a few objects it holds one
// of per peer (BENCHMARKS.md § Issue 12, Session 11 (clipeer2)). V8 gives every instance of a class
// that declares `#` methods or accessors one more slot (the class's brand, 8 B), per such class in
// its chain; `#` fields cost nothing extra. So these per-peer classes keep their private methods
// and accessors TypeScript-`private` (fields stay `#`): a `#` method added to one of them would
// cost every peer of every replica 8 B without a test failing elsewhere.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/** The class bodies held once per remote peer: file, class name. */
const PER_PEER: Array<[string, string]> = [
  ['packages/sync/src/session.ts', 'PeerSession'],
  ['packages/sync/src/health.ts', 'PeerMeter'],
  ['packages/sync/src/health.ts', 'BucketWindow'],
  ['packages/core/src/async-queue.ts', 'QueuedConnection'],
  ['packages/transport-relay/src/flow.ts', 'WindowedConnection'],
  ['packages/transport-relay/src/transport.ts', 'RelayConnection'],
];

/** The text of `class Name ... {` up to its closing brace at column 0. */
function classBody(file: string, name: string): string {
  const text = readFileSync(new URL(`../${file}`, import.meta.url), 'utf8');
  const start = text.search(new RegExp(`^(export )?(abstract )?class ${name}\\b`, 'm'));
  if (start < 0) throw new Error(`class ${name} not found in ${file}`);
  const end = text.indexOf('\n}\n', start);
  return text.slice(start, end);
}

/**
 * Per-database classes held once per idle database that need no `#` methods either (Session 12,
 * dbfold; the others — Database, RelayTransport, ... — keep theirs: one slot per database).
 */
const PER_DATABASE: Array<[string, string]> = [
  ['packages/sync/src/broadcast.ts', 'BroadcastGroup'],
  ['packages/sync/src/broadcast.ts', 'UpdateRouter'],
  ['packages/sync/src/mailbox-hook.ts', 'DeferredMailbox'],
  // Session 13 (dbtrim): the database's host extends the scheduler; the relay transport's link, mailbox access and pacer; the sealer; the health monitor.
  ['packages/sync/src/coalesce.ts', 'TurnScheduler'],
  ['packages/transport-relay/src/link.ts', 'WsLink'],
  // Session 15 (heaptrim): the relay link in Node (the `ws` one above is used only when asked for).
  ['packages/transport-relay/src/net-link.ts', 'NetLink'],
  ['packages/transport-relay/src/mailbox.ts', 'RelayMailbox'],
  ['packages/sync/src/seal.ts', 'FrameSealer'],
  ['packages/sync/src/monitor.ts', 'HealthMonitor'],
  ['packages/transport-relay/src/pacer.ts', 'SendPacer'],
];

describe('per-peer classes and some per-database ones: no `#` methods or accessors (each such class costs every instance a slot)', () => {
  for (const [file, name] of [...PER_PEER, ...PER_DATABASE]) {
    it(`${name} (${file})`, () => {
      const body = classBody(file, name);
      const hashMethods = body.match(/^ {2}(?:static |async |get |set )*#[A-Za-z0-9_]+\s*\(/gm) ?? [];
      expect(hashMethods).toEqual([]);
      // The scan does see members (a moved class would make it vacuous).
      expect(body.split('\n').length).toBeGreaterThan(10);
    });
  }
});
