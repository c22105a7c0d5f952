// `await db.flush()` in a page means "on disk", not "in this browser's memory": a page writes on a
// disk-backed Chromium profile, awaits flush(), and the whole browser (every Chromium process) is
// SIGKILLed at once; a new Chromium on the same profile finds every write. (Playwright's
// `browser.newContext()` is off the record, its IndexedDB lives in memory, so this test starts
// Chromium itself on a profile directory and drives it over CDP.)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDatabaseId } from '@rhizome/core';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './chromium.js';
import { HarnessPage, serveHarnessPage, type StaticServer } from './harness.js';
import type { PageHarness } from './page/harness-page.js';

/** `RHIZOME_CRASH_NO_FLUSH=1` runs the control: no flush, and the test fails (1 of 2,001 nodes found when written). */
const FLUSH = process.env.RHIZOME_CRASH_NO_FLUSH !== '1';

interface Running {
  proc: ChildProcess;
  browser: Browser;
  exited: Promise<void>;
}

const running = new Set<Running>();
let site: StaticServer;
let dir: string;

/** Kills the Chromium process group started by {@link startChromium} (its own group: detached). */
async function kill(r: Running): Promise<void> {
  running.delete(r);
  try {
    process.kill(-r.proc.pid!, 'SIGKILL');
  } catch {
    /* already gone */
  }
  await r.exited;
}

/** Headless Chromium on `profile`, its own process group, connected over CDP. */
async function startChromium(profile: string): Promise<Running> {
  const proc = spawn(
    CHROMIUM_PATH,
    [...CHROMIUM_ARGS, '--headless', `--user-data-dir=${profile}`, '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0', 'about:blank'],
    { detached: true, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const r: Running = { proc, browser: undefined as unknown as Browser, exited };
  running.add(r);
  try {
    const endpoint = await new Promise<string>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`Chromium printed no DevTools endpoint in 30 s:\n${text}`)), 30_000);
      proc.stderr!.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        const match = /DevTools listening on (ws:\/\/\S+)/.exec(text);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`Chromium exited (${String(code)}) before listening:\n${text}`));
      });
    });
    r.browser = await chromium.connectOverCDP(endpoint, { timeout: 30_000 });
    return r;
  } catch (error) {
    await kill(r);
    throw error;
  }
}

/** A harness page in the profile's own (disk-backed) context. */
async function pageOf(r: Running): Promise<HarnessPage> {
  const page = new HarnessPage(await r.browser.contexts()[0]!.newPage());
  await page.load(site.url);
  return page;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rhizome-browser-crash-'));
  site = await serveHarnessPage();
}, 60_000);

afterAll(async () => {
  for (const r of [...running]) await kill(r);
  await site?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a page and its IndexedDB store on disk', () => {
  it('every write made before `await db.flush()` resolved survives a SIGKILL of the whole browser', async () => {
    const profile = join(dir, 'profile');
    const id = generateDatabaseId();

    const first = await startChromium(profile);
    const writer = await pageOf(first);
    await writer.open({ id, path: 'crash' });
    await writer.put('big', { text: 'x'.repeat(200_000) });
    // 2,000 nodes of 1 KB in one tick (one store batch of ~2 MB), then flush(); the browser and
    // all its processes die as soon as it resolved: no close, no unload. (Without the flush the
    // kill lands before the batch is committed, and it is missing after the restart.)
    await writer.page.evaluate(async (flush) => {
      const db = (globalThis as unknown as { harness: PageHarness }).harness.db!;
      for (let i = 0; i < 2000; i++) db.put(`c${i}`, { i, by: 'c', text: 'y'.repeat(1000) });
      if (flush) await db.flush();
    }, FLUSH);
    await kill(first);

    const second = await startChromium(profile);
    const reader = await pageOf(second);
    await reader.open({ id, path: 'crash' });
    expect(await reader.size()).toBe(2001);
    expect(await reader.get('c1999')).toEqual({ i: 1999, by: 'c', text: 'y'.repeat(1000) });
    expect(((await reader.get('big'))?.text as string).length).toBe(200_000);
    expect(await reader.errors()).toEqual([]);
    await reader.close();
    await second.browser.close();
    await kill(second);
  }, 90_000);
});
