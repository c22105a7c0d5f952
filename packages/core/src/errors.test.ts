import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as errors from './errors.js';

describe('error codes', () => {
  it('ARCHITECTURE.md documents exactly the codes in ERROR_CODES', () => {
    const doc = readFileSync(join(import.meta.dirname, '../../../ARCHITECTURE.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## Error codes'));
    const documented = [...section.matchAll(/^\| `(ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect([...documented].sort()).toEqual([...errors.ERROR_CODES].sort());
  });

  it('every error class has a distinct code from ERROR_CODES and its own name', () => {
    const seen = new Map<string, string>();
    for (const [name, value] of Object.entries(errors)) {
      if (typeof value !== 'function' || name === 'RhizomeError') continue;
      const proto = (value as { prototype: unknown }).prototype;
      if (!(proto instanceof errors.RhizomeError)) continue;
      // Construct with placeholder arguments; every constructor accepts strings/numbers.
      const e = new (value as new (...a: unknown[]) => errors.RhizomeError)('x', 'y', 1);
      expect(e.name).toBe(name);
      expect(errors.ERROR_CODES).toContain(e.code);
      expect(seen.has(e.code), `${e.code} used by ${seen.get(e.code)} and ${name}`).toBe(false);
      seen.set(e.code, name);
    }
    expect(seen.size).toBe(errors.ERROR_CODES.length);
  });
});
