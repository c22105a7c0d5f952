import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as Y from 'yjs';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { YjsInternalsError } from '@rhizome/core';
import { FastUpdateDecoderV1, FastUpdateEncoderV1, applyUpdate, codecPath, encodeStateAsUpdate } from './codec.js';
import { integratePath, integrateUpdate } from './integrate.js';
import { NodeModel, setEntryPath } from './nodes.js';
import { setUpdateHook, updatesPath, useFastUpdates } from './doc-updates.js';
import { applyRemoteUpdates } from './apply.js';
import { DatabaseDoc, UpdateRegistry } from './database-doc.js';
import { declineFastPathsForTesting, setFastPathWarning, yjsFastPaths, type FastPathName } from './yjs-guard.js';
import { openDatabase } from './index.js';

const ALL: FastPathName[] = ['codec', 'integrate', 'setEntry', 'updates'];

afterEach(() => {
  declineFastPathsForTesting([]);
  setFastPathWarning(null);
  vi.restoreAllMocks();
});

/** A Rhizome-layout document of `n` nodes written by client `client` (a ≥ 64 KiB update for n = 3000). */
function nodesUpdate(client: number, n: number, value: (i: number) => unknown = (i) => `value number ${i}`): Uint8Array {
  const doc = new Y.Doc();
  doc.clientID = client;
  doc.transact(() => {
    for (let i = 0; i < n; i++) {
      doc.getMap('nodes').set(`n${i}`, true);
      doc.getMap('fields').set(`n${i}\u0000v`, value(i));
    }
  });
  return Y.encodeStateAsUpdate(doc);
}

describe('yjs fast paths on the installed yjs', () => {
  it('every self-test passes (no silent decline)', () => {
    const warnings: YjsInternalsError[] = [];
    setFastPathWarning((e) => warnings.push(e));
    declineFastPathsForTesting([]); // checked again from here
    expect(yjsFastPaths().map((p) => p.fast)).toEqual([null, null, null, null]);
    const status = yjsFastPaths({ check: true });
    expect(status.map((p) => p.name).sort()).toEqual(ALL);
    for (const p of status) expect(p, p.name).toEqual({ name: p.name, fast: true, reason: null });
    expect(warnings).toEqual([]);
  });

  it('the fast paths are the ones taken: Rhizome’s decoder and encoder, no Item#integrate for new root-map keys, integrateUpdate handles, fast updates encode', () => {
    expect(yjsFastPaths({ check: true }).every((p) => p.fast)).toBe(true); // the self-tests run before the spies
    const readString = vi.spyOn(FastUpdateDecoderV1.prototype, 'readString');
    const writeString = vi.spyOn(FastUpdateEncoderV1.prototype, 'writeString');
    const update = nodesUpdate(7, 100);
    const doc = new Y.Doc();
    applyUpdate(doc, update);
    expect(readString).toHaveBeenCalled();
    expect(encodeStateAsUpdate(doc)).toEqual(update);
    expect(writeString).toHaveBeenCalled();

    const integrate = vi.spyOn(Y.Item.prototype, 'integrate');
    const model = new NodeModel(new Y.Doc());
    model.put('a', { x: 1, y: 'two' }, null);
    expect(integrate).not.toHaveBeenCalled(); // setEntry linked the entries itself
    const received = new Y.Doc();
    let handled = false;
    Y.transact(received, (tr) => (handled = integrateUpdate(tr, update, null)), null, false);
    expect(handled).toBe(true);
    expect(integrate).not.toHaveBeenCalled();

    const fast = new DatabaseDoc();
    useFastUpdates(fast);
    expect((fast as unknown as { _observers: unknown })._observers).toBeInstanceOf(UpdateRegistry);
    const heard: Uint8Array[] = [];
    fast.on('update', (u: Uint8Array) => heard.push(u));
    writeString.mockClear();
    new NodeModel(fast).put('b', { title: 'fast' }, null);
    expect(heard.length).toBe(1);
    expect(writeString).toHaveBeenCalled(); // doc-updates.ts encoded it (Yjs's own encoder is not ours)
  });

  it('runs against the yjs named by RHIZOME_YJS_DIR when set (scripts/yjs-latest.mjs)', async () => {
    const dir = process.env['RHIZOME_YJS_DIR'];
    if (dir === undefined) return;
    const pkg = JSON.parse(readFileSync(join(dir, 'node_modules/yjs/package.json'), 'utf8')) as { version: string; module: string };
    const theirs = (await import(pathToFileURL(join(dir, 'node_modules/yjs', pkg.module)).href)) as typeof Y;
    // The modules under test import that very copy: a silent fallback to the locked yjs would fail here.
    expect(Y.Doc).toBe(theirs.Doc);
    expect(process.env['RHIZOME_YJS_VERSION'] ?? pkg.version).toBe(pkg.version);
  });
});

describe('a fast path that fails its self-test declines to the public Yjs API', () => {
  it('warns once per path with ERR_YJS_INTERNALS and reports the reason', () => {
    const warnings: YjsInternalsError[] = [];
    setFastPathWarning((e) => warnings.push(e));
    declineFastPathsForTesting(['codec']);
    expect(codecPath.check()).toBe(false);
    expect(codecPath.check()).toBe(false);
    // integrate and updates use the codec's classes: they decline with it; setEntry does not.
    expect(integratePath.check()).toBe(false);
    expect(updatesPath.check()).toBe(false);
    expect(setEntryPath.check()).toBe(true);
    expect(warnings.map((w) => [w.code, w.path])).toEqual([
      ['ERR_YJS_INTERNALS', 'codec'],
      ['ERR_YJS_INTERNALS', 'integrate'],
      ['ERR_YJS_INTERNALS', 'updates'],
    ]);
    expect(warnings[0]).toBeInstanceOf(YjsInternalsError);
    const status = Object.fromEntries(yjsFastPaths().map((p) => [p.name, p]));
    expect(status['codec']!.fast).toBe(false);
    expect(status['integrate']!.reason).toMatch(/codec/);
    expect(status['setEntry']!.fast).toBe(true);
  });

  it("a database document's update hook: an ordinary 'update' listener when declined, once per update; unset either way", () => {
    const heard: string[] = [];
    const hook = { onDocUpdate: (u: Uint8Array): void => void heard.push(Array.from(u).join()) };
    const registry = (doc: DatabaseDoc): UpdateRegistry => (doc as unknown as { _observers: UpdateRegistry })._observers;
    declineFastPathsForTesting(['updates']);
    const doc = new DatabaseDoc();
    setUpdateHook(doc, hook);
    expect(registry(doc).hook).toBeNull();
    expect(registry(doc).get('update')?.size).toBe(1);
    doc.getMap('m').set('a', 1);
    expect(heard.length).toBe(1);
    // Switched back (tests only): unsetting removes the listener all the same.
    declineFastPathsForTesting([]);
    setUpdateHook(doc, null);
    expect(registry(doc).get('update')?.size ?? 0).toBe(0);
    setUpdateHook(doc, hook);
    expect(registry(doc).hook).toBe(hook);
    doc.getMap('m').set('b', 2);
    expect(heard.length).toBe(2);
    declineFastPathsForTesting(['updates']);
    setUpdateHook(doc, null);
    expect(registry(doc).hook).toBeNull();
    doc.getMap('m').set('c', 3);
    expect(heard.length).toBe(2);
  });

  it('detects a drifted internal: ContentAny#integrate no longer a no-op makes setEntry decline, and puts still equal Y.Map#set', () => {
    // As if a yjs release gave ContentAny#integrate work to do: setEntry's fast case skips it.
    const original = Y.ContentAny.prototype.integrate;
    Y.ContentAny.prototype.integrate = function (this: Y.ContentAny, tr: Y.Transaction, item: Y.Item): void {
      original.call(this, tr, item);
      if (typeof this.arr[0] === 'string') this.arr[0] = `${this.arr[0] as string}!`;
    };
    try {
      const warnings: YjsInternalsError[] = [];
      setFastPathWarning((e) => warnings.push(e));
      declineFastPathsForTesting([]);
      expect(setEntryPath.check()).toBe(false);
      expect(warnings.map((w) => w.path)).toEqual(['setEntry']);
      expect(yjsFastPaths().find((p) => p.name === 'setEntry')!.reason).toMatch(/Y\.Map#set/);
      // The public behaviour follows Yjs (whatever it now does).
      const ours = new Y.Doc();
      const theirs = new Y.Doc();
      theirs.clientID = ours.clientID;
      new NodeModel(ours).put('a', { title: 'hello' }, null);
      theirs.transact(() => {
        theirs.getMap('nodes').set('a', true);
        theirs.getMap('fields').set('a\u0000title', 'hello');
      });
      expect(ours.getMap('fields').get('a\u0000title')).toBe('hello!');
      expect(Y.encodeStateAsUpdate(ours)).toEqual(Y.encodeStateAsUpdate(theirs));
    } finally {
      Y.ContentAny.prototype.integrate = original;
    }
  });

  it('every declined path gives the documents the fast paths give (node writes, large and small received updates, reopen, sync)', async () => {
    const outcome = async (): Promise<Record<string, unknown>> => {
      // Module level: a large update through applyRemoteUpdates, then local writes on top.
      const doc = new Y.Doc();
      doc.clientID = 50;
      const heard: Uint8Array[] = [];
      doc.on('update', (u: Uint8Array) => heard.push(u));
      applyRemoteUpdates(doc, [nodesUpdate(7, 3000)], 'peer');
      applyRemoteUpdates(doc, [nodesUpdate(8, 3)], 'peer');
      const model = new NodeModel(doc);
      model.put('n1', { v: 'local', w: [1, { k: 'ü' }] }, null);
      model.putMany([['n2', { v: 'batch' }], ['x', { y: null }]], null);
      model.delete('n3', null);
      const copy = new Y.Doc();
      for (const u of heard) Y.applyUpdate(copy, u);
      // Database level: two databases on a memory hub, one with a ≥ 64 KiB state, synced.
      const hub = `yjs-guard-${Math.random()}`;
      const id = `db-${Math.random()}`;
      const path = join(dir, `${Math.random()}.db`);
      const a = await openDatabase({ id, path, transport: { mode: 'memory', hub, peerId: 'a' } });
      a.transact(() => {
        for (let i = 0; i < 2000; i++) a.put(`k${i}`, { title: `node ${i} with some text`, n: i });
      });
      const b = await openDatabase({ id, transport: { mode: 'memory', hub, peerId: 'b' } });
      await b.whenSynced({ minPeers: 1 });
      expect(b.get('k1999')).toEqual({ title: 'node 1999 with some text', n: 1999 }); // a's state is in (b's put overwrites, not races)
      b.put('k1', { title: 'from b' });
      a.delete('k2');
      await Promise.all([a.whenDelivered(), b.whenDelivered()]);
      const listA = a.list();
      const listB = b.list();
      await Promise.all([a.close(), b.close()]);
      const reopened = await openDatabase({ id, path });
      const listReopened = reopened.list();
      await reopened.close();
      return {
        state: Array.from(Y.encodeStateAsUpdate(doc)),
        fromUpdates: Array.from(Y.encodeStateAsUpdate(copy)),
        nodes: model.list(),
        listA,
        listB,
        listReopened,
      };
    };
    const dir = mkdtempSync(join(tmpdir(), 'rhizome-yjs-guard-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const fast = await outcome();
    const warnings: YjsInternalsError[] = [];
    setFastPathWarning((e) => warnings.push(e));
    declineFastPathsForTesting('all');
    const declined = await outcome();
    expect(warnings.map((w) => w.path).sort()).toEqual(ALL);
    expect(yjsFastPaths().every((p) => p.fast === false)).toBe(true);
    expect(declined).toEqual(fast);
    expect((fast['listA'] as unknown[]).length).toBe(1999);
    expect((fast['listA'] as Array<{ id: string; data: unknown }>).find((n) => n.id === 'k1')!.data).toEqual({ title: 'from b', n: 1 });
    expect(fast['listA']).toEqual(fast['listB']);
    expect(fast['listReopened']).toEqual(fast['listA']);
  });
});
