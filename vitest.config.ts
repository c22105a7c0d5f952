import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Workspace packages resolve to their TypeScript sources: no build step before tests.
    conditions: ['rhizome-source'],
  },
  ssr: { resolve: { conditions: ['rhizome-source'] } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'relay/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
