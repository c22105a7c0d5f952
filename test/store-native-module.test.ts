// A store opened by a Node that better-sqlite3 was not built for (README § Quick start: in this
// repository `npm install` builds it for the Node 22 it provides, while `node` on the PATH may be
// an older one) fails with ERR_STORE_UNAVAILABLE saying what to run instead, not Node's bare
// ERR_DLOPEN_FAILED. The real case runs the machine's other Node (/usr/bin/node, or
// RHIZOME_OTHER_NODE) when its module version differs from this one's; the mapping itself is
// checked on Node's own error text.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nativeModuleError } from '../packages/store-sqlite/src/sqlite-store.js';

const ROOT = join(import.meta.dirname, '..');
const OTHER_NODE = process.env.RHIZOME_OTHER_NODE ?? '/usr/bin/node';
const otherModules = existsSync(OTHER_NODE) ? execFileSync(OTHER_NODE, ['-p', 'process.versions.modules'], { encoding: 'utf8' }).trim() : null;

describe('better-sqlite3 built for another Node', () => {
  it("maps Node's ERR_DLOPEN_FAILED to ERR_STORE_UNAVAILABLE naming both module versions and the way out; other errors pass", () => {
    const dlopen = Object.assign(
      new Error(
        "The module '/x/node_modules/better-sqlite3/build/Release/better_sqlite3.node'\nwas compiled against a different Node.js version using\nNODE_MODULE_VERSION 127. This version of Node.js requires\nNODE_MODULE_VERSION 115. Please try re-compiling or re-installing",
      ),
      { code: 'ERR_DLOPEN_FAILED' },
    );
    const mapped = nativeModuleError('notes.db', dlopen);
    expect(mapped).toMatchObject({ code: 'ERR_STORE_UNAVAILABLE', path: 'notes.db', cause: dlopen });
    expect(mapped!.message).toContain('NODE_MODULE_VERSION 127');
    expect(mapped!.message).toContain(`NODE_MODULE_VERSION ${process.versions.modules}`);
    expect(mapped!.message).toContain('npx node app.mjs');
    expect(nativeModuleError('notes.db', Object.assign(new Error('no such file'), { code: 'ENOENT' }))).toBeNull();
    expect(nativeModuleError('notes.db', null)).toBeNull();
  });

  it.skipIf(otherModules === null || otherModules === process.versions.modules)(`a script run by ${OTHER_NODE} gets ERR_STORE_UNAVAILABLE from openDatabase`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'rhizome-other-node-'));
    try {
      const script = join(ROOT, `.other-node-${process.pid}.mts`);
      writeFileSync(
        script,
        `import { openDatabase } from '@rhizome/sync';\n` +
          `try { await openDatabase({ id: 'other-node', path: ${JSON.stringify(join(dir, 'notes.db'))} }); console.log('opened'); }\n` +
          `catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }\n`,
      );
      try {
        const r = spawnSync(OTHER_NODE, ['--conditions=rhizome-source', '--import', 'tsx', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
        const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { code: string; message: string };
        expect(out.code, r.stderr).toBe('ERR_STORE_UNAVAILABLE');
        expect(out.message).toContain(`NODE_MODULE_VERSION ${otherModules}`);
      } finally {
        rmSync(script, { force: true });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
