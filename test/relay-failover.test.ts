// A relay transport given several relay URLs: it skips one that refuses, sticks to the one that
// works, and moves on when that one goes away — real relays on 127.0.0.1.
import { describe, expect, it } from 'vitest';
import { createTransport, deriveTopic } from '@rhizome/core';
import { createRelayServer } from '@rhizome/relay';
import { freePort } from '@rhizome/relay/testing';
import { RelayTransport } from '@rhizome/transport-relay';

describe('relay URL lists', () => {
  it('skips a relay that refuses, sticks to the next, fails over when it closes', async () => {
    const dead = `ws://127.0.0.1:${await freePort()}`;
    const b = await createRelayServer({ port: 0, host: '127.0.0.1' });
    const c = await createRelayServer({ port: 0, host: '127.0.0.1' });
    const transport = new RelayTransport({ url: [dead, b.url, c.url], timeoutMs: 10_000 });
    try {
      expect(transport.urls).toEqual([`${dead}/`, `${b.url}/`, `${c.url}/`]);
      await transport.lookup(deriveTopic('failover'));
      expect(transport.url).toBe(`${b.url}/`);
      expect(b.stats().connections).toBe(1);
      await transport.lookup(deriveTopic('failover'));
      expect(transport.url).toBe(`${b.url}/`);
      await b.close();
      await transport.lookup(deriveTopic('failover'));
      expect(transport.url).toBe(`${c.url}/`);
      expect(c.stats().connections).toBe(1);
    } finally {
      await transport.disconnect();
      await c.close();
    }
  });

  it('an empty list or a bad entry is ERR_INVALID_CONFIG on relayUrl', () => {
    expect(() => createTransport({ mode: 'relay', relayUrl: [] })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: 'relayUrl' }));
    expect(() => createTransport({ mode: 'relay', relayUrl: ['ws://a:1', 'ftp://b'] })).toThrow(expect.objectContaining({ field: 'relayUrl' }));
    expect(() => new RelayTransport({ url: [] })).toThrow(expect.objectContaining({ field: 'relayUrl' }));
  });
});
