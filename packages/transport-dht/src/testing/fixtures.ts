// Scaffolding shared by this package's tests (not built into dist/: tsconfig.build.json excludes src/testing).
import { deriveTopic, type RhizomeError } from '@rhizome/core';
import { DhtTransport } from '../transport.js';

type Options = ConstructorParameters<typeof DhtTransport>[0];

/** Things to undo after each test, undone in reverse order (`afterEach(() => cleanup.run())`). */
export class Cleanup {
  readonly #fns: Array<() => Promise<unknown> | unknown> = [];

  push(fn: () => Promise<unknown> | unknown): void {
    this.#fns.push(fn);
  }

  async run(): Promise<void> {
    for (const fn of this.#fns.splice(0).reverse()) await fn();
  }
}

/** A maker of topics unique to this process and `prefix`. */
export function topicMaker(prefix: string): () => Uint8Array {
  let n = 0;
  return () => deriveTopic(`${prefix}-${process.pid}-${n++}`);
}

/** A transport on 127.0.0.1 that records the errors it reports, disconnected by `cleanup`. */
export function recordingTransport(cleanup: Cleanup, defaults: Options, options: Options = {}): { t: DhtTransport; errors: RhizomeError[] } {
  const errors: RhizomeError[] = [];
  const t = new DhtTransport({ listen: ['/ip4/127.0.0.1/tcp/0'], allowPrivateAddresses: true, onError: (e) => errors.push(e), ...defaults, ...options });
  cleanup.push(() => t.disconnect());
  return { t, errors };
}

/** Sync-protocol streams the node has open (to check that refused streams do not linger). */
export function syncStreams(t: DhtTransport, protocol: string): number {
  return (t.libp2p?.getConnections() ?? []).flatMap((c) => c.streams).filter((s) => s.protocol === protocol).length;
}

/** Polls a condition every 20 ms, bounded in count and time: for state libp2p exposes without an event. */
export async function eventually(what: string, cond: () => boolean, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (let i = 0; !cond(); i++) {
    if (Date.now() > deadline || i > waitMs / 20) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
