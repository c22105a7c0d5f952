// A driver process of the comparison: forked by bench/compare.ts with an IPC channel, it runs
// one workload for one system and reports the result. Rhizome is loaded from the workspace;
// the peers' clients from bench/peers (their own node_modules), never both in one process.
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import * as workloads from './workloads.js';
import type { DriverIo } from './workloads.js';
import type { ClientKit, ColdParams, FanoutParams, IdleParams, PacedParams, RunRequest, StreamParams, WorkloadResult } from './types.js';

async function loadKit(system: string): Promise<ClientKit> {
  if (system === 'rhizome') return checkedKit((await import('./rhizome-client.js')).rhizome);
  const url = pathToFileURL(join(import.meta.dirname, '..', 'peers', 'clients.mjs')).href;
  const mod = (await import(url)) as { kits: Record<string, ClientKit> };
  const kit = mod.kits[system];
  if (!kit) throw new Error(`unknown system '${system}'`);
  return checkedKit(kit);
}

/**
 * A client kit compiled with esbuild's keepNames (tsx does so for .ts files) wraps its per-replica
 * arrow functions in `__name(fn, "x")`, which gives each closure of each replica a dictionary of
 * properties (~250 B): memory the bench adds to one system and not to the others (BENCHMARKS.md §
 * Issue 12, Session 12 (audit)). Write such closures as methods.
 */
function checkedKit(kit: ClientKit): ClientKit {
  if (String(kit.open).includes('__name(')) throw new Error('bench client kit: open() wraps closures in __name() (esbuild keepNames): write them as methods');
  return kit;
}

const pending = new Map<string, (value: unknown) => void>();
let seq = 0;
function ask(message: Record<string, unknown>): Promise<unknown> {
  const id = String(++seq);
  return new Promise((resolve) => {
    pending.set(id, resolve);
    process.send!({ ...message, id });
  });
}

const io: DriverIo = {
  async mark(name, gc) {
    await ask({ type: 'mark', name, gc: gc ?? false });
  },
  async waitStored(room, nodes, timeoutMs) {
    const at = (await ask({ type: 'wait-stored', room, nodes, timeoutMs })) as number | null;
    return at ?? undefined;
  },
};

async function run(req: RunRequest): Promise<WorkloadResult> {
  const kit = await loadKit(req.system);
  const ctx = { kit, url: req.url, tmpDir: req.tmpDir, io };
  const result = await (async () => {
    switch (req.workload) {
      case 'stream':
        return workloads.stream(ctx, req.params as StreamParams);
      case 'paced':
        return workloads.paced(ctx, req.params as PacedParams);
      case 'fanout':
        return workloads.fanout(ctx, req.params as FanoutParams);
      case 'cold':
        return workloads.cold(ctx, req.params as ColdParams);
      case 'seed':
        return workloads.seed(ctx, req.params as ColdParams);
      case 'idle':
        return workloads.idle(ctx, req.params as IdleParams);
    }
  })();
  return { ...result, versions: kit.versions };
}

process.on('message', (msg: { type: string; id?: string; value?: unknown }) => {
  if (msg.type === 'reply' && msg.id) {
    pending.get(msg.id)?.(msg.value);
    pending.delete(msg.id);
  } else if (msg.type === 'exit') {
    process.exit(0);
  } else if (msg.type === 'run') {
    const req = msg as unknown as RunRequest;
    run(req).then(
      // The seed keeps its replica online until the parent ends this process.
      (result) => process.send!({ type: 'result', result }, () => (req.workload === 'seed' ? undefined : process.exit(0))),
      (error: unknown) => process.send!({ type: 'error', error: error instanceof Error ? (error.stack ?? error.message) : String(error) }, () => process.exit(1)),
    );
  }
});
process.on('disconnect', () => process.exit(1));
process.send!({ type: 'hello' });
