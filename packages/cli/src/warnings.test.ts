import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { NetworkConfig } from './network.js';
import { Output } from './output.js';
import { WARN_DHT_PRIVATE_BOOTSTRAP, isPrivateMultiaddr, warnAboutFlags } from './warnings.js';

describe('isPrivateMultiaddr', () => {
  it('is true for loopback, RFC 1918, link-local, unique-local IPv6 and localhost; false for public and other addresses', () => {
    const id = '/p2p/12D3KooWNrNUFoptLVSzpmPTKokEkoWghb69XN3JA96auerGxB19';
    for (const a of ['/ip4/127.0.0.1/tcp/4001', '/ip4/10.1.2.3/tcp/1', '/ip4/172.16.0.1/tcp/1', '/ip4/172.31.255.255/tcp/1', '/ip4/192.168.1.5/tcp/1/ws', '/ip4/169.254.1.1/tcp/1', '/ip6/::1/tcp/1', '/ip6/fd00::1/tcp/1', '/ip6/fe80::1/tcp/1', '/dns4/localhost/tcp/1']) {
      expect(isPrivateMultiaddr(a + id), a).toBe(true);
    }
    for (const a of ['/ip4/203.0.113.5/tcp/4001', '/ip4/172.32.0.1/tcp/1', '/ip4/8.8.8.8/tcp/1', '/ip6/2001:db8::1/tcp/1', '/dns4/boot.example.com/tcp/4001', '/p2p-circuit', 'not a multiaddr']) {
      expect(isPrivateMultiaddr(a + id), a).toBe(false);
    }
  });
});

describe('WARN_DHT_PRIVATE_BOOTSTRAP', () => {
  const id = 'Qe5aY1TAcxNXKM1a-qHyIUpx';
  const loopback = '/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWNrNUFoptLVSzpmPTKokEkoWghb69XN3JA96auerGxB19';
  const lan = '/ip4/192.168.1.5/tcp/4001/p2p/12D3KooWNrNUFoptLVSzpmPTKokEkoWghb69XN3JA96auerGxB19';
  const global = '/ip4/203.0.113.5/tcp/4001/p2p/12D3KooWNrNUFoptLVSzpmPTKokEkoWghb69XN3JA96auerGxB19';
  const warnings = (config: NetworkConfig): string[] => {
    const lines: string[] = [];
    const sink = new Writable({ write: (c: Buffer, _e, cb) => (lines.push(...c.toString().split('\n').filter(Boolean)), cb()) });
    warnAboutFlags(new Output(true, { stdout: sink, stderr: sink }), id, {}, config);
    return lines.map((l) => (JSON.parse(l) as { warning?: { code: string } }).warning?.code ?? '');
  };

  it('is given for a DHT bootstrap on loopback or a LAN without allowPrivateAddresses, and only then', () => {
    expect(warnings({ mode: 'dht', bootstrap: [loopback] })).toContain(WARN_DHT_PRIVATE_BOOTSTRAP);
    expect(warnings({ mode: 'dht', bootstrap: [lan] })).toContain(WARN_DHT_PRIVATE_BOOTSTRAP);
    expect(warnings([{ mode: 'dht', bootstrap: [loopback] }, { mode: 'relay', relayUrl: 'wss://relay.example.com' }])).toContain(WARN_DHT_PRIVATE_BOOTSTRAP);
    expect(warnings({ mode: 'dht', bootstrap: [loopback], allowPrivateAddresses: true })).not.toContain(WARN_DHT_PRIVATE_BOOTSTRAP);
    expect(warnings({ mode: 'dht', bootstrap: [global] })).not.toContain(WARN_DHT_PRIVATE_BOOTSTRAP);
    expect(warnings({ mode: 'dht', bootstrap: [loopback, global] })).not.toContain(WARN_DHT_PRIVATE_BOOTSTRAP);
    expect(warnings({ mode: 'relay', relayUrl: 'ws://127.0.0.1:8080' })).not.toContain(WARN_DHT_PRIVATE_BOOTSTRAP);
  });
});
