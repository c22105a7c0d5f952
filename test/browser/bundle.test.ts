// The browser entry of @rhizome/sync bundles for a page with nothing Node-only in it.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bundleForBrowser } from './bundle.js';

const root = join(import.meta.dirname, '../..');

describe('browser bundle', () => {
  it("import { openDatabase } from '@rhizome/sync' bundles for a page: no Node built-in, no SQLite, the IndexedDB store and relay client in", async () => {
    const bundle = await bundleForBrowser(
      {
        contents: `
          import { openDatabase } from '@rhizome/sync';
          import { generateDatabaseId } from '@rhizome/core';
          export async function main() {
            const db = await openDatabase({ id: generateDatabaseId(), path: 'x', transport: { mode: 'relay', relayUrl: 'ws://127.0.0.1:1' } });
            db.put('a', { b: 1 });
            await db.flush();
          }`,
      },
      { resolveDir: root },
    );
    expect(bundle.nodeBuiltins).toEqual([]);
    const inputs = Object.keys(bundle.metafile.inputs);
    expect(inputs.some((p) => p.includes('store-sqlite') || p.includes('better-sqlite3'))).toBe(false);
    expect(inputs.some((p) => p.includes('packages/store-browser/src/idb-store.ts'))).toBe(true);
    expect(inputs.some((p) => p.includes('packages/transport-relay/src/transport.ts'))).toBe(true);
    expect(inputs.some((p) => p.includes('packages/sync/src/platform/node.ts'))).toBe(false);
    // ws's own browser stub (176 bytes, for the Node-only dynamic import) is all of ws there is.
    expect(inputs.filter((p) => (p.includes('node_modules/ws/') && !p.endsWith('ws/browser.js')) || p.includes('libp2p'))).toEqual([]);
  });

  it('the check fails where it should: the Node entry reaches node: built-ins (through SQLite)', async () => {
    const bundle = await bundleForBrowser(join(root, 'packages/sync/src/index.ts'));
    expect(bundle.nodeBuiltins.length).toBeGreaterThan(0);
    expect(bundle.nodeBuiltins.join('\n')).toMatch(/store-sqlite/);
  });
});
