// Shared by the scale-out tests: relay processes on one Redis, their /healthz and /metrics.
import { startRelayProcess, type RelayProcess } from '@rhizome/relay/testing';

/** What `/healthz` of a relay with `--redis` says. */
export interface ClusterHealth {
  status: string;
  connections: number;
  cluster?: { instanceId: string; redis: 'up' | 'down'; instances: number; remotePeers: number };
}

/** `/healthz` of a relay process (ws:// → http://). */
export async function health(relay: RelayProcess): Promise<ClusterHealth> {
  const res = await fetch(`${relay.url.replace(/^ws/, 'http')}/healthz`);
  return (await res.json()) as ClusterHealth;
}

/** One sample of a metric from `/metrics` (first line that starts with `name`), or NaN. */
export async function metric(relay: RelayProcess, name: string): Promise<number> {
  const text = await (await fetch(`${relay.url.replace(/^ws/, 'http')}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/**
 * Polls `/healthz` (a relay in another process has no event to await) until `check` holds;
 * bounded in time, every 50 ms.
 */
export async function untilHealth(relay: RelayProcess, check: (h: ClusterHealth) => boolean, what: string, timeoutMs = 20_000): Promise<ClusterHealth> {
  const deadline = Date.now() + timeoutMs;
  let last: ClusterHealth | string = 'no answer';
  while (Date.now() < deadline) {
    try {
      const h = await health(relay);
      last = h;
      if (check(h)) return h;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last /healthz: ${JSON.stringify(last)}`);
}

/** Starts `n` relay processes on one Redis and waits until each sees all `n` instances. */
export async function startCluster(n: number, redisUrl: string, extra: string[] = []): Promise<RelayProcess[]> {
  const relays = await Promise.all(
    Array.from({ length: n }, () => startRelayProcess(['--port', '0', '--host', '127.0.0.1', '--redis', redisUrl, ...extra], { timeoutMs: 30_000 })),
  );
  await Promise.all(relays.map((r, i) => untilHealth(r, (h) => h.cluster?.redis === 'up' && h.cluster.instances === n, `relay ${i} to see ${n} instances`)));
  return relays;
}

/** Stops relay processes that are still running (SIGTERM), ignoring ones already gone. */
export async function stopAll(relays: readonly RelayProcess[]): Promise<void> {
  await Promise.all(relays.map((r) => r.stop().catch(() => null)));
}
