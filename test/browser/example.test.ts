// examples/browser in Chromium: two people on two pages (their own browser profiles) share a
// todo list, a Y.Text note and presence through the example's relay, and an always-on
// `rhizome sync` replica (the CLI, a child process) sees what the pages write. The harness
// takes the README's screenshot of the two pages side by side.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBrowserExample, type BrowserExample } from '../../examples/browser/server.js';
import { Running, ROOT } from '../cli-helpers.js';
import { launchChromium } from './harness.js';

const WAIT = 20_000;
/** Set RHIZOME_UPDATE_SCREENSHOT=1 to write the README's picture (docs/browser-example.png). */
const SCREENSHOT = process.env.RHIZOME_UPDATE_SCREENSHOT === '1' ? join(ROOT, 'docs/browser-example.png') : undefined;

let browser: Browser;
let example: BrowserExample;
let dir: string;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rhizome-example-'));
  [browser, example] = await Promise.all([launchChromium(), startBrowserExample({ port: 0, relayPort: 0 })]);
}, 60_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await example?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function person(name: string): Promise<Page> {
  const ctx = await browser.newContext({ viewport: { width: 560, height: 700 }, deviceScaleFactor: 1 });
  contexts.push(ctx);
  const page = await ctx.newPage();
  const url = new URL(example.url);
  url.search = `?name=${name}`;
  await page.goto(url.href);
  await page.locator('#status:not(.off)').waitFor({ timeout: WAIT });
  return page;
}

async function addTodo(page: Page, title: string): Promise<void> {
  await page.fill('#new-todo', title);
  await page.press('#new-todo', 'Enter');
}

describe('examples/browser', () => {
  it('two pages share todos, a note and presence through the relay; a `rhizome sync` replica sees what they write', async () => {
    const replica = new Running(['sync', example.dbId, '--db', join(dir, 'replica.db'), '--relay', example.relayUrl, '--json']);
    try {
      await replica.waitForJson((e) => e['type'] === 'ready', 'the replica to be ready', WAIT);
      const ada = await person('Ada');
      const grace = await person('Grace');

      await addTodo(ada, 'Ship the IndexedDB store');
      await addTodo(ada, 'Write down what flush() guarantees');
      await addTodo(grace, 'Two tabs, one database: test it');
      await addTodo(grace, 'Bundle size under 120 KiB');
      await grace.locator('li', { hasText: 'Ship the IndexedDB store' }).waitFor({ timeout: WAIT });
      await grace.locator('li', { hasText: 'Ship the IndexedDB store' }).locator('input[type=checkbox]').check();
      await ada.locator('li.done', { hasText: 'Ship the IndexedDB store' }).waitFor({ timeout: WAIT });

      await ada.click('#note');
      await ada.keyboard.type('Release notes: the browser build keeps everything in IndexedDB and syncs through the relay.');
      await grace.locator('#note').waitFor();
      await grace.waitForFunction(() => (document.getElementById('note') as HTMLTextAreaElement).value.includes('through the relay.'), undefined, { timeout: WAIT });
      await grace.click('#note');
      await grace.keyboard.press('End');
      await grace.keyboard.type(' Sealed end to end; the relay sees only ciphertext.');
      await ada.waitForFunction(() => (document.getElementById('note') as HTMLTextAreaElement).value.includes('only ciphertext.'), undefined, { timeout: WAIT });

      // Both pages: 4 todos, the same note, both people present (Grace shown typing).
      for (const page of [ada, grace]) {
        await expect.poll(() => page.locator('#todos li[data-id]').count(), { timeout: WAIT }).toBe(4);
        await page.locator('.avatar[data-name=Ada]').waitFor({ timeout: WAIT });
        await page.locator('.avatar[data-name=Grace]').waitFor({ timeout: WAIT });
      }
      await ada.locator('.avatar.typing[data-name=Grace]').waitFor({ timeout: WAIT });
      const noteA = await ada.inputValue('#note');
      expect(await grace.inputValue('#note')).toBe(noteA);
      expect(noteA).toContain('syncs through the relay.');

      // The CLI replica got the pages' writes.
      const upsert = await replica.waitForJson(
        (e) => e['type'] === 'node-upsert' && (e['data'] as { title?: string } | undefined)?.title === 'Bundle size under 120 KiB',
        'a page-written todo at the replica',
        WAIT,
      );
      expect(upsert['data']).toMatchObject({ by: 'Grace', done: false });
      await replica.waitForJson((e) => e['type'] === 'node-upsert' && (e['data'] as { done?: boolean } | undefined)?.done === true, 'the checked todo at the replica', WAIT);

      // The README's picture: the two pages side by side, composed in a third page.
      await ada.locator('#saved', { hasText: 'saved' }).waitFor({ timeout: WAIT });
      await grace.locator('#saved', { hasText: 'saved' }).waitFor({ timeout: WAIT });
      const [shotA, shotB] = await Promise.all([ada.screenshot(), grace.screenshot()]);
      const frame = await browser.newPage({ viewport: { width: 560 * 2 + 24 * 3, height: 700 + 24 * 2 }, deviceScaleFactor: 1 });
      await frame.setContent(
        `<body style="margin:0;padding:24px;display:flex;gap:24px;background:#d7dbe6">` +
          [shotA, shotB].map((s) => `<img style="border-radius:10px;box-shadow:0 8px 24px rgba(15,23,42,.18)" src="data:image/png;base64,${s.toString('base64')}">`).join('') +
          `</body>`,
      );
      await frame.waitForFunction(() => Array.from(document.images).every((i) => i.complete && i.naturalWidth > 0));
      const png = await frame.screenshot();
      await frame.close();
      expect(png.length).toBeGreaterThan(20_000);
      writeFileSync(SCREENSHOT ?? join(dir, 'browser-example.png'), png);
    } finally {
      replica.child.kill('SIGTERM');
      await replica.exited;
    }
  });
});
