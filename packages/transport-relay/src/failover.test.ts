import { describe, expect, it } from 'vitest';
import { RelayRotation } from './failover.js';

const policy = { initialDelayMs: 100, maxDelayMs: 1000, factor: 2 };

describe('RelayRotation', () => {
  it('sticks to a relay that works and moves to the next one when it fails, wrapping around', () => {
    const r = new RelayRotation(['ws://a:1/', 'ws://b:1/', 'ws://c:1/']);
    expect(r.current).toBe('ws://a:1/');
    r.succeeded();
    expect(r.current).toBe('ws://a:1/');
    r.failed(policy);
    expect(r.current).toBe('ws://b:1/');
    r.succeeded();
    expect(r.current).toBe('ws://b:1/');
    r.failed(policy);
    r.failed(policy);
    expect(r.current).toBe('ws://a:1/');
  });

  it('backs off per round through the list, with jitter in [d/2, d], capped', () => {
    const r = new RelayRotation(['ws://a:1/', 'ws://b:1/']);
    const low = (): number => 0;
    const high = (): number => 1;
    expect(r.failed(policy, low)).toBe(50); // round 0: d = 100
    expect(r.failed(policy, high)).toBe(100);
    expect(r.failed(policy, low)).toBe(100); // round 1: d = 200
    expect(r.failed(policy, high)).toBe(200);
    for (let i = 0; i < 20; i++) r.failed(policy);
    expect(r.failed(policy, high)).toBe(1000);
    r.succeeded();
    expect(r.failed(policy, high)).toBe(100);
  });

  it('one relay: retries the same URL', () => {
    const r = new RelayRotation(['ws://a:1/']);
    r.failed(policy);
    expect(r.current).toBe('ws://a:1/');
  });

  it('gives up on refusals retrying cannot fix only once every relay refused in a row', () => {
    const r = new RelayRotation(['ws://a:1/', 'ws://b:1/']);
    expect(r.refusedForGood()).toBe(false);
    expect(r.refusedForGood()).toBe(true);
    const s = new RelayRotation(['ws://a:1/', 'ws://b:1/']);
    expect(s.refusedForGood()).toBe(false);
    s.succeeded();
    expect(s.refusedForGood()).toBe(false);
  });
});
