import { describe, expect, it } from 'vitest';
import { deriveTopic, generateDatabaseId, topicFromHex, topicToHex, assertTopic } from './topic.js';

// Vectors computed independently with Python's hashlib:
//   python3 -c "import hashlib;print(hashlib.blake2b('<id>'.encode(),digest_size=32).hexdigest())"
const VECTORS: Array<[string | Uint8Array, string]> = [
  ['abc', 'bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319'],
  ['', '0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8'],
  ['héllo wörld 🌱', '94c15fd6910c8287f4c8878b66799dbd8deb49a324755d04f1f5f51458d5fde7'],
  ['数据库', '150f90771555adf1a3d2f326a9f2086cf59e601582be3422725f21ce9ad5522c'],
  ['a'.repeat(1000), 'e00b0ddbf1e2cdaf5c898e1a5e8826ea3a2c339bcf2a478da2e5fca9ff126672'],
  [new Uint8Array([0, 1, 2, 255]), 'b0d14675f01a34e8969dcaa8ac68ea76ac8cd456c6abdc66b2a45070ca9541d8'],
];

describe('deriveTopic', () => {
  it.each(VECTORS)('matches hashlib.blake2b(digest_size=32) for %j', (id, hex) => {
    const topic = deriveTopic(id);
    expect(topic).toBeInstanceOf(Uint8Array);
    expect(topic.length).toBe(32);
    expect(topicToHex(topic)).toBe(hex);
  });

  it('is the same for a string and its UTF-8 bytes', () => {
    expect(deriveTopic('héllo')).toEqual(deriveTopic(new TextEncoder().encode('héllo')));
  });

  it('rejects ids that are neither strings nor bytes', () => {
    expect(() => deriveTopic(42 as unknown as string)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });
});

describe('topic hex', () => {
  it('round-trips and accepts upper case', () => {
    const t = deriveTopic('abc');
    expect(topicFromHex(topicToHex(t))).toEqual(t);
    expect(topicFromHex(topicToHex(t).toUpperCase())).toEqual(t);
  });

  it.each(['', 'zz', 'bddd', 'g'.repeat(64), 'bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d5231', '0x' + 'a'.repeat(62)])(
    'rejects %j with ERR_INVALID_TOPIC',
    (hex) => {
      expect(() => topicFromHex(hex)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_TOPIC' }));
    },
  );

  it('assertTopic rejects wrong lengths and types', () => {
    expect(() => assertTopic(new Uint8Array(31))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_TOPIC' }));
    expect(() => assertTopic('abc')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_TOPIC' }));
    expect(() => topicToHex(new Uint8Array(2))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_TOPIC' }));
  });
});

describe('generateDatabaseId', () => {
  it('gives URL-safe ids with at least 128 random bits, all distinct', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const id = generateDatabaseId();
      expect(id).toMatch(/^[A-Za-z0-9_-]{24}$/);
      ids.add(id);
    }
    expect(ids.size).toBe(10_000);
    // 24 base64url characters carry 144 bits.
    expect(24 * 6).toBeGreaterThanOrEqual(128);
  });

  it('uses every base64url character over many ids (no stuck bits)', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2_000; i++) for (const ch of generateDatabaseId()) seen.add(ch);
    expect(seen.size).toBe(64);
  });
});
