import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DocStore } from '../store.js';

/**
 * One store under test, made by the factory given to {@link runStoreContract}.
 */
export interface StoreContractSubject {
  /** A fresh, empty store. */
  store: DocStore;
  /**
   * For stores with a backing file: opens the same storage again. The suite calls it after
   * closing `store` and checks that everything survived. Omit for in-memory stores.
   */
  reopen?(): DocStore | Promise<DocStore>;
  /** Removes whatever the subject left behind (temp files). Stores are already closed. */
  dispose?(): void | Promise<void>;
}

/** Options of {@link runStoreContract}. */
export interface StoreContractOptions {
  /** The store keeps its contents across close and reopen (a file): the suite then checks that, through the subject's `reopen`. */
  persistent?: boolean;
}

/** Deterministic bytes of a given length, so a swapped or damaged update shows. */
function bytes(length: number, seed: number): Uint8Array {
  const b = new Uint8Array(length);
  for (let i = 0; i < length; i++) b[i] = (i * 131 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

function u(seed: number, length = 16 + (seed % 23)): Uint8Array {
  return bytes(length, seed);
}

/** Hex text of the bytes: compares whatever Uint8Array subclass (e.g. Buffer) a store returns. */
function hex(b: Uint8Array): string {
  // No Buffer: the suite also runs inside a browser.
  let out = '';
  for (const byte of b) out += byte.toString(16).padStart(2, '0');
  return out;
}

function plain(list: readonly Uint8Array[]): string[] {
  return list.map(hex);
}

function expectCode(fn: () => unknown, code: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown, `expected a throw with code ${code}`).toBeInstanceOf(Error);
  expect((thrown as { code?: unknown }).code).toBe(code);
}

/**
 * The {@link DocStore} contract, written once and run for every implementation (MemoryStore,
 * SqliteStore). Call it at the top level of a vitest file; `factory` is called once per test.
 *
 * @example
 * ```ts
 * runStoreContract('MemoryStore', () => ({ store: new MemoryStore() }));
 * ```
 */
export function runStoreContract(
  name: string,
  factory: () => StoreContractSubject | Promise<StoreContractSubject>,
  options: StoreContractOptions = {},
): void {
  describe(`DocStore contract: ${name}`, () => {
    let subject: StoreContractSubject;
    let store: DocStore;
    const opened: DocStore[] = [];

    beforeEach(async () => {
      subject = await factory();
      store = subject.store;
      opened.push(store);
    });

    afterEach(async () => {
      for (const s of opened.splice(0)) s.close();
      await subject.dispose?.();
    });

    async function reopen(): Promise<DocStore> {
      store.close();
      const again = await subject.reopen!();
      opened.push(again);
      store = again;
      return again;
    }

    it('gives an empty state for an unknown document', () => {
      expect(store.load('nothing')).toEqual({ snapshot: null, updates: [], lastSeq: 0 });
      expect(store.stats('nothing')).toEqual({ updates: 0, updateBytes: 0, snapshotBytes: 0, lastSeq: 0 });
    });

    it('appends in order, numbering updates 1, 2, 3, ... per document', () => {
      expect(store.append('d', [u(1), u(2)])).toBe(2);
      expect(store.append('d', [u(3)])).toBe(3);
      expect(store.append('d', [u(4), u(5), u(6)])).toBe(6);
      const loaded = store.load('d');
      expect(loaded.snapshot).toBeNull();
      expect(loaded.lastSeq).toBe(6);
      expect(plain(loaded.updates)).toEqual(plain([1, 2, 3, 4, 5, 6].map((s) => u(s))));
    });

    it('appending nothing changes nothing and returns the last sequence number', () => {
      expect(store.append('d', [])).toBe(0);
      store.append('d', [u(1)]);
      expect(store.append('d', [])).toBe(1);
      expect(store.load('d').updates).toHaveLength(1);
    });

    it('keeps bytes exactly, including large and zero-filled updates', () => {
      const big = bytes(1024 * 1024 + 7, 3);
      const zeros = new Uint8Array(100);
      const one = Uint8Array.of(0);
      store.append('d', [big, zeros, one]);
      expect(plain(store.load('d').updates)).toEqual(plain([big, zeros, one]));
      expect(store.stats('d').updateBytes).toBe(big.length + 101);
    });

    it('copies: changing an input or a loaded array afterwards does not change the store', () => {
      const input = u(1);
      store.append('d', [input]);
      input.fill(0xee);
      const first = store.load('d');
      expect(plain(first.updates)).toEqual(plain([u(1)]));
      first.updates[0]!.fill(0xdd);
      expect(plain(store.load('d').updates)).toEqual(plain([u(1)]));
    });

    it('keeps documents isolated from each other', () => {
      store.append('a', [u(1)]);
      store.append('b', [u(10), u(11)]);
      store.append('a', [u(2)]);
      store.append('b', [u(12)]);
      expect(plain(store.load('a').updates)).toEqual(plain([u(1), u(2)]));
      expect(plain(store.load('b').updates)).toEqual(plain([u(10), u(11), u(12)]));
      expect(store.stats('a').lastSeq).toBe(2);
      expect(store.stats('b').lastSeq).toBe(3);
      store.compact('a', u(99), 2);
      expect(store.load('b').snapshot).toBeNull();
      expect(store.load('b').updates).toHaveLength(3);
    });

    it('lists the ids of the documents it holds, any string included', () => {
      store.append('alpha', [u(1)]);
      store.append('β-δ/😀 ', [u(2)]);
      store.append('', [u(3)]);
      expect(store.docIds().sort()).toEqual(['', 'alpha', 'β-δ/😀 '].sort());
    });

    it('compact replaces the updates through throughSeq by the snapshot and keeps later ones', () => {
      store.append('d', [u(1), u(2), u(3), u(4), u(5)]);
      const snap = bytes(300, 42);
      store.compact('d', snap, 3);
      const loaded = store.load('d');
      expect(hex(loaded.snapshot!)).toBe(hex(snap));
      expect(plain(loaded.updates)).toEqual(plain([u(4), u(5)]));
      expect(loaded.lastSeq).toBe(5);
      expect(store.stats('d')).toEqual({
        updates: 2,
        updateBytes: u(4).length + u(5).length,
        snapshotBytes: 300,
        lastSeq: 5,
      });
    });

    it('sequence numbers go on after a compaction that emptied the log, and a new snapshot replaces the old', () => {
      store.append('d', [u(1), u(2)]);
      store.compact('d', bytes(10, 1), 2);
      expect(store.load('d')).toMatchObject({ updates: [], lastSeq: 2 });
      expect(store.stats('d')).toMatchObject({ updates: 0, updateBytes: 0, snapshotBytes: 10, lastSeq: 2 });
      expect(store.append('d', [u(3)])).toBe(3);
      store.compact('d', bytes(20, 2), 3);
      const loaded = store.load('d');
      expect(hex(loaded.snapshot!)).toBe(hex(bytes(20, 2)));
      expect(loaded.updates).toEqual([]);
      expect(store.append('d', [u(4)])).toBe(4);
      expect(plain(store.load('d').updates)).toEqual(plain([u(4)]));
    });

    it('reading an unknown document leaves no trace in docIds', () => {
      store.load('ghost');
      store.stats('ghost');
      expect(store.docIds()).not.toContain('ghost');
    });

    it('compact rejects a throughSeq that is negative or past the log', () => {
      store.append('d', [u(1), u(2)]);
      expectCode(() => store.compact('d', bytes(4, 1), -1), 'ERR_INVALID_ARGUMENT');
      expectCode(() => store.compact('d', bytes(4, 1), 3), 'ERR_INVALID_ARGUMENT');
      expect(store.stats('d')).toMatchObject({ updates: 2, snapshotBytes: 0 });
    });

    it('stats follow appends and compactions', () => {
      const list = [u(1, 10), u(2, 20), u(3, 30)];
      store.append('d', list);
      expect(store.stats('d')).toEqual({ updates: 3, updateBytes: 60, snapshotBytes: 0, lastSeq: 3 });
      store.compact('d', bytes(5, 0), 1);
      expect(store.stats('d')).toEqual({ updates: 2, updateBytes: 50, snapshotBytes: 5, lastSeq: 3 });
    });

    it('after close every call throws ERR_CLOSED, and close is idempotent', () => {
      store.append('d', [u(1)]);
      store.close();
      store.close();
      expectCode(() => store.load('d'), 'ERR_CLOSED');
      expectCode(() => store.append('d', [u(2)]), 'ERR_CLOSED');
      expectCode(() => store.compact('d', u(3), 1), 'ERR_CLOSED');
      expectCode(() => store.stats('d'), 'ERR_CLOSED');
      expectCode(() => store.docIds(), 'ERR_CLOSED');
    });

    if (options.persistent) it('reopened from its backing storage, holds the same documents', async () => {
      expect(subject.reopen, 'a persistent store subject provides reopen()').toBeTypeOf('function');
      store.append('a', [u(1), u(2), u(3)]);
      store.compact('a', bytes(64, 9), 2);
      store.append('a', [u(4)]);
      store.append('b', [u(5)]);
      const beforeA = store.load('a');
      const beforeB = store.load('b');
      const statsA = store.stats('a');
      const reopened = await reopen();
      expect(reopened.docIds().sort()).toEqual(['a', 'b']);
      const afterA = reopened.load('a');
      expect(hex(afterA.snapshot!)).toBe(hex(beforeA.snapshot!));
      expect(plain(afterA.updates)).toEqual(plain(beforeA.updates));
      expect(afterA.lastSeq).toBe(4);
      expect(plain(reopened.load('b').updates)).toEqual(plain(beforeB.updates));
      expect(reopened.stats('a')).toEqual(statsA);
      expect(reopened.append('a', [u(6)])).toBe(5);
    });
  });
}
