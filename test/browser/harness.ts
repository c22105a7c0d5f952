// Node side of the browser tests: Debian's Chromium through playwright-core, a tiny static
// server on 127.0.0.1 for esbuild-built pages, and typed access to a page's `window.harness`.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { JsonValue } from '@rhizome/core';
import { bundleForBrowser } from './bundle.js';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './chromium.js';
import type { PageHarness, PageOpenOptions } from './page/harness-page.js';

const root = join(import.meta.dirname, '../..');

/** Starts headless Chromium from /usr/bin/chromium (one per test file; pages are cheap). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true, timeout: 30_000 });
}

/**
 * Starts headless Chromium on a persistent profile in `userDataDir`: its IndexedDB and OPFS are
 * on disk. (A context from `browser.newContext()` is off the record: its storage lives in memory.)
 */
export function launchChromiumProfile(userDataDir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true, timeout: 30_000 });
}

/** A static HTTP server on 127.0.0.1 for a few in-memory files. */
export interface StaticServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css', '.png': 'image/png', '.map': 'application/json', '.wasm': 'application/wasm' };

/** Serves `files` (path → contents) on 127.0.0.1 (port 0 unless given). */
export async function serveStatic(files: Record<string, string | Uint8Array>, port = 0): Promise<StaticServer> {
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const key = path === '/' ? '/index.html' : path;
    const body = files[key];
    if (body === undefined) {
      res.writeHead(404).end('not found');
      return;
    }
    const ext = key.slice(key.lastIndexOf('.'));
    res.writeHead(200, { 'content-type': TYPES[ext] ?? 'application/octet-stream', 'cache-control': 'no-store' }).end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actual}/`,
    port: actual,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Builds the test page (test/browser/page/harness-page.ts through @rhizome/sync's browser entry) and serves it. */
export async function serveHarnessPage(): Promise<StaticServer> {
  const bundle = await bundleForBrowser(join(root, 'test/browser/page/harness-page.ts'), { minify: false, sourcemap: true });
  if (bundle.nodeBuiltins.length > 0) throw new Error(`the test page reaches Node built-ins: ${bundle.nodeBuiltins.join(', ')}`);
  return serveStatic({
    '/index.html': '<!doctype html><meta charset="utf-8"><title>rhizome</title><script type="module" src="/harness.js"></script>',
    '/harness.js': bundle.code,
  });
}

/** Typed calls into a page's `window.harness`. */
export class HarnessPage {
  readonly page: Page;
  constructor(page: Page) {
    this.page = page;
  }

  /** Loads (or reloads) the page and waits for its harness. */
  async load(url: string): Promise<void> {
    await this.page.goto(url);
    await this.page.waitForFunction(() => 'harness' in globalThis, undefined, { timeout: 10_000 });
  }

  async reload(): Promise<void> {
    await this.page.reload();
    await this.page.waitForFunction(() => 'harness' in globalThis, undefined, { timeout: 10_000 });
  }

  open(options: PageOpenOptions): Promise<void> {
    return this.page.evaluate((o) => (globalThis as unknown as { harness: PageHarness }).harness.open(o), options);
  }
  put(id: string, data: Record<string, JsonValue>): Promise<void> {
    // JSON text in, parsed in the page: JsonValue is too deep for playwright's argument types.
    return this.page.evaluate(([i, d]) => (globalThis as unknown as { harness: PageHarness }).harness.put(i, JSON.parse(d) as Record<string, never>), [id, JSON.stringify(data)] as const);
  }
  putMany(prefix: string, n: number, spread = false): Promise<void> {
    return this.page.evaluate(([p, c, s]) => (globalThis as unknown as { harness: PageHarness }).harness.putMany(p, c, s), [prefix, n, spread] as const);
  }
  ids(): Promise<string[]> {
    return this.page.evaluate(() => (globalThis as unknown as { harness: PageHarness }).harness.ids());
  }
  size(): Promise<number> {
    return this.page.evaluate(() => (globalThis as unknown as { harness: PageHarness }).harness.size());
  }
  get(id: string): Promise<Record<string, JsonValue> | undefined> {
    return this.page.evaluate((i) => (globalThis as unknown as { harness: PageHarness }).harness.get(i), id);
  }
  errors(): Promise<string[]> {
    return this.page.evaluate(() => (globalThis as unknown as { harness: PageHarness }).harness.errors);
  }
  flush(): Promise<void> {
    return this.page.evaluate(() => (globalThis as unknown as { harness: PageHarness }).harness.flush());
  }
  close(): Promise<void> {
    return this.page.evaluate(() => (globalThis as unknown as { harness: PageHarness }).harness.close());
  }

  timedOpen(options: PageOpenOptions): Promise<number> {
    return this.page.evaluate((o) => (globalThis as unknown as { harness: PageHarness }).harness.timedOpen(o), options);
  }
  timedPuts(n: number): Promise<number> {
    return this.page.evaluate((c) => (globalThis as unknown as { harness: PageHarness }).harness.timedPuts(c), n);
  }
  bulkLoad(n: number): Promise<void> {
    return this.page.evaluate((c) => (globalThis as unknown as { harness: PageHarness }).harness.bulkLoad(c), n);
  }
  timedColdSync(options: PageOpenOptions, n: number): Promise<number> {
    return this.page.evaluate(([o, c]) => (globalThis as unknown as { harness: PageHarness }).harness.timedColdSync(o, c), [options, n] as const);
  }

  /** Writes `n` nodes, optionally awaits `db.flush()`, and reloads the page from inside it at once. */
  async writeThenReload(prefix: string, n: number, flush: boolean): Promise<void> {
    const loaded = this.page.waitForEvent('load', { timeout: 20_000 });
    // The reload destroys the context the call runs in: its rejection is expected.
    await this.page
      .evaluate(([p, c, f]) => (globalThis as unknown as { harness: PageHarness }).harness.writeThenReload(p, c, f), [prefix, n, flush] as const)
      .catch(() => undefined);
    await loaded;
    await this.page.waitForFunction(() => 'harness' in globalThis, undefined, { timeout: 10_000 });
  }

  /** Waits (polling in the page, bounded by `timeoutMs`) until the database holds at least `n` nodes. */
  async untilSize(n: number, timeoutMs = 20_000): Promise<void> {
    await this.page.waitForFunction((count) => (globalThis as unknown as { harness: PageHarness }).harness.size() >= count, n, { timeout: timeoutMs, polling: 50 });
  }

  /** Waits until the page's database reported an error with `code`. */
  async untilError(code: string, timeoutMs = 20_000): Promise<void> {
    await this.page.waitForFunction((c) => (globalThis as unknown as { harness: PageHarness }).harness.errors.includes(c), code, { timeout: timeoutMs, polling: 50 });
  }
}
