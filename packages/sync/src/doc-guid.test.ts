import { describe, expect, it } from 'vitest';
import { openDatabase } from './index.js';
import { newDocGuid } from './doc-guid.js';

describe("a database's Y.Doc guid", () => {
  it('is a random version-4 UUID, one per database', async () => {
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const g = newDocGuid();
      expect(g).toMatch(uuid);
      seen.add(g);
    }
    expect(seen.size).toBe(1000);
    const [a, b] = await Promise.all([openDatabase({ id: 'guid db' }), openDatabase({ id: 'guid db' })]);
    try {
      expect(a.doc.guid).toMatch(uuid);
      expect(b.doc.guid).toMatch(uuid);
      expect(a.doc.guid).not.toBe(b.doc.guid);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
