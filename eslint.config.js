// Lint: type-aware rules that catch floating promises, plus import cycles.
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

export default tseslint.config(
  // Root-level .ts files other than vitest.config.ts are scratch files (not in tsconfig.json): not linted.
  { ignores: ['**/dist/**', '**/node_modules/**', 'bench/node_modules/**', 'eslint.config.js', 'scripts/*.mjs', '*.ts', '!vitest.config.ts'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts', '.js', '.mjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [
        createTypeScriptImportResolver({ project: './tsconfig.json', conditionNames: ['rhizome-source', 'types', 'import', 'default'] }),
      ],
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'no-console': 'error',
    },
  },
  {
    // Programs that print are allowed to: the CLI, the relay binary, examples, tests, benchmarks.
    files: ['packages/cli/src/**', 'relay/src/bin.ts', 'examples/**', 'test/**', 'bench/**', 'scripts/**', '**/*.test.ts'],
    rules: { 'no-console': 'off' },
  },
);
