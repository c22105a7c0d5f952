import { mkdtempSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DhtTransport } from './transport.js';
import { createTransportFromConfig } from './index.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rhizome-dht-keys-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('key file', () => {
  it('is created with mode 0600 and gives the same peer id on every load', async () => {
    const keyFile = join(tempDir(), 'peer.key');
    const a = new DhtTransport({ keyFile });
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const b = new DhtTransport({ keyFile });
    expect(b.peerId).toBe(a.peerId);
    expect(a.peerId).toMatch(/^12D3KooW/);
    expect(new DhtTransport().peerId).not.toBe(a.peerId);
    await Promise.all([a.disconnect(), b.disconnect()]);
  });

  it('a corrupt key file is ERR_INVALID_CONFIG naming keyFile, and the file is left as is', () => {
    const keyFile = join(tempDir(), 'peer.key');
    writeFileSync(keyFile, 'not a key at all');
    expect(() => new DhtTransport({ keyFile })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: 'keyFile' }));
    expect(readFileSync(keyFile, 'utf8')).toBe('not a key at all');
    const empty = join(tempDir(), 'empty.key');
    writeFileSync(empty, '');
    expect(() => createTransportFromConfig({ mode: 'dht', timeoutMs: 1000, encryption: true, keyFile: empty })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: 'keyFile' }),
    );
  });

  it('a key file in a missing directory is ERR_INVALID_CONFIG', () => {
    const keyFile = join(tempDir(), 'no', 'such', 'dir', 'peer.key');
    expect(() => new DhtTransport({ keyFile })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: 'keyFile' }));
  });
});

describe('options', () => {
  it('bad fields are ERR_INVALID_CONFIG naming the field', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ bootstrap: ['not a multiaddr'] }, 'bootstrap'],
      [{ listen: ['/ip4/999.0.0.1/tcp/0'] }, 'listen'],
      [{ protocolPrefix: 'rhizome' }, 'protocolPrefix'],
      [{ protocolPrefix: '/rhizome/' }, 'protocolPrefix'],
      [{ timeoutMs: 0 }, 'timeoutMs'],
      [{ maxMessageSize: 1.5 }, 'maxMessageSize'],
      [{ allowPrivateAddresses: 'yes' }, 'allowPrivateAddresses'],
    ];
    for (const [options, field] of cases) {
      expect(() => new DhtTransport(options), JSON.stringify(options)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field }));
    }
  });

  it('createTransportFromConfig maps the DHT fields of TransportConfig', async () => {
    const t = createTransportFromConfig({ mode: 'dht', timeoutMs: 1234, encryption: true, maxMessageSize: 4096, protocolPrefix: '/x' });
    expect(t.name).toBe('dht');
    expect(t.maxMessageSize).toBe(4096);
    expect(t).toBeInstanceOf(DhtTransport);
    await t.disconnect();
  });
});
