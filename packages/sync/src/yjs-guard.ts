/**
 * Guards for Rhizome's fast paths through Yjs internals.
 *
 * yjs is a dependency range (`^13.6.33`), and an app's `npm install` dedupes it to the app's copy
 * (Yjs must be a single copy in an app). Four modules reach into yjs 13.6 internals for speed:
 * codec.ts (Yjs's v1 decoder and encoder classes, lib0's decoder/encoder fields), nodes.ts
 * `setEntry` (map entries integrated directly: the `Item` constructor, `_map`, `store.clients`,
 * `tr.changed`), integrate.ts (one large received update integrated in Rhizome's own loop: the
 * `Item`/`GC`/content constructors, `getMissing`, info bits, `integrate`), and doc-updates.ts with
 * database-doc.ts (local transactions encoded in JavaScript, and Yjs's one `has('update')`
 * question after `'afterTransactionCleanup'` answered by Rhizome's registry). ARCHITECTURE.md §
 * Yjs versions lists what each relies on.
 *
 * Each of them owns a {@link FastPath}: on its first use in the process it runs a small self-test
 * of the fast path against Yjs's public API on the yjs that is actually loaded (a few small
 * documents, a few milliseconds once) and compares bytes, documents and changed keys. If the
 * self-test throws or differs, the fast path declines for the life of the process: its callers take
 * the public Yjs API (`Y.applyUpdate`, `Y.Map#set`, `Y.encodeStateAsUpdate`, Yjs's own `'update'`
 * encoding) — correct, slower — and one warning per declined path goes to the sink set with
 * {@link setFastPathWarning} (the Node entry point passes `process.emitWarning`, so it is printed
 * once on stderr unless the app handles `'warning'` events or runs with `--no-warnings`). Every
 * status can be read with {@link yjsFastPaths}. On the hot paths the cost is one boolean field read
 * (`path.fast`).
 */
import { YjsInternalsError } from '@rhizome/core';

/** The fast paths that depend on Yjs internals. */
export type FastPathName = 'codec' | 'setEntry' | 'integrate' | 'updates';

/** What {@link yjsFastPaths} reports of one fast path. */
export interface FastPathStatus {
  name: FastPathName;
  /** `true` once the self-test passed, `false` if the path declined, `null` if not used (not checked) yet. */
  fast: boolean | null;
  /** Why it declined (null otherwise). */
  reason: string | null;
}

/** A self-test: null if the fast path behaves as Yjs does on the loaded yjs, else what differed. */
export type SelfTest = () => string | null;

const UNCHECKED = 0;
const CHECKING = 1;
const CHECKED = 2;

/** Every fast path, in the order they were made. */
const paths: FastPath[] = [];
/** Paths a test forces to decline (their self-test is not run). */
let forced: ReadonlySet<FastPathName> = new Set();
let warn: ((error: YjsInternalsError) => void) | null = null;

/**
 * One fast path through Yjs internals and the self-test that decides, once per process, whether it
 * is taken. Callers test `path.fast` first (true once the self-test passed) and call
 * {@link FastPath.check} only when it is false:
 *
 * ```ts
 * if (!path.fast && !path.check()) return Y.applyUpdate(doc, update, origin);
 * ```
 */
export class FastPath {
  /** True while the fast path may be taken: after its self-test passed, and while it runs. */
  fast = false;
  readonly name: FastPathName;
  #state = UNCHECKED;
  #reason: string | null = null;
  readonly #selfTest: SelfTest;
  readonly #needs: readonly FastPath[];

  /** `needs`: fast paths this one uses (it declines when one of them does). */
  constructor(name: FastPathName, selfTest: SelfTest, needs: readonly FastPath[] = []) {
    this.name = name;
    this.#selfTest = selfTest;
    this.#needs = needs;
    paths.push(this);
  }

  /**
   * True if the fast path may be taken: runs the self-test on the first call (the fast path is
   * taken inside it, `fast` being true meanwhile), then answers from its result.
   */
  check(): boolean {
    if (this.#state !== UNCHECKED) return this.fast;
    let reason: string | null = null;
    if (forced.has(this.name)) reason = 'declined by a test (declineFastPathsForTesting)';
    for (const need of this.#needs) if (reason === null && !need.check()) reason = `it uses the ${need.name} fast path, which declined`;
    if (reason === null) {
      this.#state = CHECKING;
      this.fast = true;
      try {
        reason = this.#selfTest();
      } catch (error) {
        reason = `its self-test threw: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`;
      }
    }
    this.#state = CHECKED;
    this.fast = reason === null;
    this.#reason = reason;
    if (reason !== null) warn?.(new YjsInternalsError(this.name, reason));
    return this.fast;
  }

  /** This path's status (see {@link yjsFastPaths}). */
  status(): FastPathStatus {
    return { name: this.name, fast: this.#state === CHECKED ? this.fast : null, reason: this.#reason };
  }

  /** Back to unchecked (tests). */
  reset(): void {
    this.#state = UNCHECKED;
    this.fast = false;
    this.#reason = null;
  }
}

/**
 * The status of every fast path through Yjs internals: taken (`fast: true`), declined to the
 * public Yjs API (`fast: false`, with the reason), or not used yet (`null`). With `check: true`
 * every self-test that has not run yet runs now.
 *
 * @example
 * ```ts
 * import { yjsFastPaths } from '@rhizome/sync';
 * const declined = yjsFastPaths({ check: true }).filter((p) => !p.fast);
 * if (declined.length > 0) console.warn('Rhizome runs on the public Yjs API:', declined);
 * ```
 */
export function yjsFastPaths(options?: { check?: boolean }): FastPathStatus[] {
  if (options?.check === true) for (const p of paths) p.check();
  return paths.map((p) => p.status());
}

/**
 * Where a declined fast path's {@link YjsInternalsError} goes (once per path and process); `null`
 * sends it nowhere (the status stays readable with {@link yjsFastPaths}). The Node entry point of
 * `@rhizome/sync` sets `process.emitWarning`.
 */
export function setFastPathWarning(sink: ((error: YjsInternalsError) => void) | null): void {
  warn = sink;
}

/**
 * Tests only: makes the named fast paths decline (all of them for `'all'`, none for an empty
 * list) and checks every path again at its next use. Not exported from the package.
 */
export function declineFastPathsForTesting(names: readonly FastPathName[] | 'all'): void {
  forced = new Set(names === 'all' ? paths.map((p) => p.name) : names);
  for (const p of paths) p.reset();
}
