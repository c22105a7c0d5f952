// Topic: members as exact-size arrays replaced on change, announcers apart, an index for large topics.
import { describe, expect, it } from 'vitest';
import { Topic } from './topic.js';

interface P {
  readonly session: number;
}
const peers = (n: number, from = 1): P[] => Array.from({ length: n }, (_, i) => ({ session: from + i }));

describe('Topic', () => {
  it('keeps members in join order, finds them by session, and tells members from announcers', () => {
    const t = new Topic<P>(7, 'ab'.repeat(32));
    const [a, b, c] = peers(3);
    t.addAnnouncer(a!);
    expect(t.isListed(a!)).toBe(true);
    expect(t.member(a!.session)).toBeUndefined();
    t.addMember(b!);
    t.addMember(a!); // an announcer that joins becomes a member, listed once
    expect(t.members).toEqual([b, a]);
    expect(t.member(a!.session)).toBe(a);
    expect([...t.listed()]).toEqual([b, a]);
    expect(t.listedCount).toBe(2);
    t.addAnnouncer(c!);
    expect([...t.listed()]).toEqual([b, a, c]);
    expect(t.memberCount).toBe(2);
    expect(t.remove(c!)).toBe(false); // an announcer was not a member
    expect(t.remove(b!)).toBe(true);
    expect(t.remove(b!)).toBe(false);
    expect(t.members).toEqual([a]);
    expect(t.isListed(b!)).toBe(false);
    expect(t.remove(a!)).toBe(true);
    expect(t.listedCount).toBe(0);
    expect(t.members).toEqual([]);
  });

  it('replaces its member array on every change: a loop over the members sees them as they were', () => {
    const t = new Topic<P>(1, '00'.repeat(32));
    const ps = peers(5);
    for (const p of ps) t.addMember(p);
    const seen: P[] = [];
    for (const p of t.members) {
      seen.push(p);
      if (p === ps[1]) {
        t.remove(ps[3]!); // e.g. a send in the loop cut a later member
        t.addMember({ session: 99 });
      }
    }
    expect(seen).toEqual(ps);
    expect(t.members.map((p) => p.session)).toEqual([1, 2, 3, 5, 99]);
  });

  it('finds members by session in large topics too (indexed), also after they shrink again', () => {
    const t = new Topic<P>(1, '00'.repeat(32));
    const ps = peers(40);
    for (const p of ps) t.addMember(p);
    for (const p of ps) expect(t.member(p.session)).toBe(p);
    expect(t.member(1000)).toBeUndefined();
    for (const p of ps.slice(0, 35)) expect(t.remove(p)).toBe(true);
    expect(t.memberCount).toBe(5);
    for (const p of ps.slice(35)) expect(t.member(p.session)).toBe(p);
    for (const p of ps.slice(0, 35)) expect(t.member(p.session)).toBeUndefined();
    for (const p of ps.slice(0, 30)) t.addMember(p);
    expect(t.memberCount).toBe(35);
    for (const p of ps.slice(0, 30)) expect(t.member(p.session)).toBe(p);
    expect(t.members.map((p) => p.session)).toEqual([...ps.slice(35), ...ps.slice(0, 30)].map((p) => p.session));
  });

  it('gives its 32 bytes from the hex key', () => {
    const key = Buffer.from(Array.from({ length: 32 }, (_, i) => i * 7)).toString('hex');
    const t = new Topic<P>(1, key);
    expect(t.bytes.toString('hex')).toBe(key);
    expect(t.bytes).toBe(t.bytes);
  });
});
