/**
 * The yjs-internals tests against another yjs than the locked one (scripts/yjs-latest.mjs):
 * `yjs`, `lib0` and `y-protocols` — in Rhizome's sources, its tests, and everything they load —
 * resolve to the copies installed in `RHIZOME_YJS_DIR`, so there is one Yjs in the process and it
 * is that one (yjs-guard.test.ts checks it).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { defineConfig } from 'vitest/config';

const dir = process.env['RHIZOME_YJS_DIR'];
if (dir === undefined || dir === '') throw new Error('RHIZOME_YJS_DIR: the directory scripts/yjs-latest.mjs installed yjs into');

/**
 * Node's own resolution (conditions `node`, `import`) from inside the overlay directory, the one Node
 * applies when y-protocols there imports yjs: a module there whose `import.meta.resolve` we call.
 */
const resolver = join(dir, 'resolve.mjs');
writeFileSync(resolver, 'export const resolve = (specifier) => import.meta.resolve(specifier);\n');
const { resolve: resolveInOverlay } = (await import(pathToFileURL(resolver).href)) as { resolve: (specifier: string) => string };

/** Bare imports served from the overlay. */
const OVERLAID = /^(yjs|lib0|y-protocols)(\/|$)/;

/** The test files of the fast paths through Yjs internals and their callers. */
export const YJS_INTERNALS_TESTS = [
  'packages/sync/src/yjs-guard.test.ts',
  'packages/sync/src/integrate.test.ts',
  'packages/sync/src/nodes.test.ts',
  'packages/sync/src/codec.test.ts',
  'packages/sync/src/doc-updates.test.ts',
  'packages/sync/src/doc-updates-once.test.ts',
  'packages/sync/src/apply.test.ts',
  'packages/sync/src/database-doc.test.ts',
  'packages/sync/src/persistence.test.ts',
];

export default defineConfig({
  resolve: { conditions: ['rhizome-source'] },
  ssr: { resolve: { conditions: ['rhizome-source'] } },
  plugins: [
    {
      name: 'rhizome-yjs-overlay',
      enforce: 'pre',
      resolveId(source) {
        if (!OVERLAID.test(source)) return null;
        const id = fileURLToPath(resolveInOverlay(source));
        if (!id.startsWith(dir)) throw new Error(`${source} resolved outside ${dir}: ${id}`);
        return id;
      },
    },
  ],
  test: {
    name: 'yjs-latest',
    include: YJS_INTERNALS_TESTS,
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
