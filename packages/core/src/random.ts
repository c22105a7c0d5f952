/**
 * Random bytes for identifiers and nonces (request ids, replica ids, peer ids, nonce prefixes),
 * drawn from the platform's CSPRNG (`crypto.getRandomValues`) a pool at a time.
 *
 * Opening one database draws about a dozen small ids; one `getRandomValues` call each cost ~9 µs
 * of CPU in Node (a binding call, and an on-heap `Uint8Array` moved off the heap so that the
 * binding can fill it: a malloc per draw) — ~0.1 ms per replica, 4 % of what connecting a
 * replica costs the client (BENCHMARKS.md § Issue 12, Session 9 (cliconn)). The pool holds
 * {@link RANDOM_POOL_BYTES} bytes of CSPRNG output; each byte is handed out once and zeroed in the
 * pool as it goes, so what was handed out is not kept, and an id is as random as a direct draw.
 * Requests larger than a sixteenth of the pool are drawn directly.
 *
 * A pool lives in the heap, and a V8 startup snapshot (`node --build-snapshot`,
 * `v8.startupSnapshot`) copies the heap: every process started from a snapshot taken after a
 * draw would hand out the same bytes. So when Node is building a snapshot the pool is emptied
 * before the heap is serialized (each process then refills its own), and a sealer's nonce
 * prefix, whose reuse under one key would reuse keystream, is drawn directly anyway (seal.ts).
 */

/** Bytes drawn from the CSPRNG per refill of the pool. */
export const RANDOM_POOL_BYTES = 4096;

let pool: Uint8Array | null = null;
let used = RANDOM_POOL_BYTES;

/**
 * `length` fresh random bytes from the platform's CSPRNG, through a per-process pool (see the
 * module description). For identifiers and nonces; a key should come from a direct draw.
 */
export function randomId(length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0) throw new RangeError('length must be a non-negative integer');
  const out = new Uint8Array(length);
  if (length > RANDOM_POOL_BYTES / 16) {
    fill(out);
    return out;
  }
  if (used + length > RANDOM_POOL_BYTES) {
    if (pool === null) {
      pool = new Uint8Array(RANDOM_POOL_BYTES);
      forgetInSnapshots();
    }
    fill(pool);
    used = 0;
  }
  const p = pool as Uint8Array;
  for (let i = 0; i < length; i++) {
    out[i] = p[used + i] as number;
    p[used + i] = 0;
  }
  used += length;
  return out;
}

/**
 * While Node builds a startup snapshot, empties the pool before the heap is serialized (see the
 * module description). Found with `process.getBuiltinModule`: bundles never import `node:v8`.
 */
function forgetInSnapshots(): void {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  try {
    const snapshot = (proc?.getBuiltinModule?.('node:v8') as { startupSnapshot?: StartupSnapshot } | undefined)?.startupSnapshot;
    if (snapshot === undefined || !snapshot.isBuildingSnapshot()) return;
    snapshot.addSerializeCallback(() => {
      pool?.fill(0);
      pool = null;
      used = RANDOM_POOL_BYTES;
    });
  } catch {
    // No node:v8 (a browser): no startup snapshots either.
  }
}

/** The part of `node:v8`'s `startupSnapshot` used here. */
interface StartupSnapshot {
  /** Truthy while building (Node 22 returns 1). */
  isBuildingSnapshot(): unknown;
  addSerializeCallback(callback: () => void): void;
}

/** getRandomValues fills at most 65,536 bytes per call. */
function fill(bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length; at += 65_536) globalThis.crypto.getRandomValues(bytes.subarray(at, Math.min(bytes.length, at + 65_536)));
}
