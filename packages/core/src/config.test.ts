import { describe, expect, it } from 'vitest';
import { createTransport } from './create.js';
import { normalizeRelayUrl, resolveTransportConfig } from './config.js';
import { DisabledTransport } from './disabled.js';
import { MemoryTransport } from './memory.js';

describe('createTransport', () => {
  it('applies the contract defaults', () => {
    expect(resolveTransportConfig({})).toMatchObject({ mode: 'dht', timeoutMs: 30_000, encryption: true });
  });

  it('builds disabled and memory transports synchronously', async () => {
    const d = createTransport({ mode: 'disabled' });
    expect(d).toBeInstanceOf(DisabledTransport);
    const m = createTransport({ mode: 'memory', hub: 'cfg-test' });
    expect(m).toBeInstanceOf(MemoryTransport);
    expect(m.name).toBe('memory');
    await Promise.all([d.disconnect(), m.disconnect()]);
  });

  it('relay and dht transports are created without loading their packages', async () => {
    const r = createTransport({ mode: 'relay', relayUrl: 'relay.example' });
    expect(r.name).toBe('relay');
    const d = createTransport({ mode: 'dht' });
    expect(d.name).toBe('dht');
    // Disconnecting an unused lazy transport loads nothing and is idempotent.
    await r.disconnect();
    await r.disconnect();
    await d.disconnect();
    await expect(r.connect(new Uint8Array(32))).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CLOSED' });
  });

  it.each([
    [{ mode: 'carrier-pigeon' }, 'mode'],
    [{ timeoutMs: -1 }, 'timeoutMs'],
    [{ timeoutMs: Number.NaN }, 'timeoutMs'],
    [{ encryption: 'yes' }, 'encryption'],
    [{ encryption: false }, 'encryption'],
    [{ mode: 'relay', relayUrl: 'ws://127.0.0.1:1', encryption: false }, 'encryption'],
    [{ mode: 'memory', encryption: false }, 'encryption'],
    [{ mode: 'relay' }, 'relayUrl'],
    [{ mode: 'relay', relayUrl: 'ftp://x' }, 'relayUrl'],
    [{ mode: 'relay', relayUrl: 'ws://' }, 'relayUrl'],
    [{ mode: 'relay', relayUrl: 'wss://relay.example.com/#x' }, 'relayUrl'],
    [{ bootstrap: 'not-an-array' }, 'bootstrap'],
    [{ listen: [''] }, 'listen'],
    [{ relayURL: 'wss://typo' }, 'relayURL'],
    [{ maxMessageSize: 10 }, 'maxMessageSize'],
  ])('rejects %j naming the field %s', (config, field) => {
    expect(() => createTransport(config as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field }));
  });
});

describe('normalizeRelayUrl', () => {
  it.each([
    ['relay.example.com', 'wss://relay.example.com/'],
    ['relay.example.com:8443', 'wss://relay.example.com:8443/'],
    ['wss://relay.example.com', 'wss://relay.example.com/'],
    ['ws://127.0.0.1:8080', 'ws://127.0.0.1:8080/'],
    ['https://relay.example.com/sync', 'wss://relay.example.com/sync'],
    ['http://localhost:80', 'ws://localhost/'],
    ['ws://relay.example.com', 'ws://relay.example.com:443/'],
    ['http://relay.example.com/x', 'ws://relay.example.com:443/x'],
    ['ws://[::1]', 'ws://[::1]:443/'],
    ['ws://[::1]:8080', 'ws://[::1]:8080/'],
    ['ws://user@relay.example.com:9000', 'ws://user@relay.example.com:9000/'],
  ])('%s → %s', (input, expected) => {
    expect(normalizeRelayUrl(input)).toBe(expected);
  });

  it('a URL without a port means 443', () => {
    const url = new URL(normalizeRelayUrl('relay.example.com'));
    expect(url.protocol).toBe('wss:');
    // WHATWG URLs leave the default port empty; 443 is the wss default.
    expect(url.port === '' || url.port === '443').toBe(true);
    // A ws:// URL without a port means 443 too (where `rhizome relay` listens by default).
    expect(new URL(normalizeRelayUrl('ws://relay.example.com')).port).toBe('443');
  });
});
