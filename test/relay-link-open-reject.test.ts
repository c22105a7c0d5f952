// A relay socket that cannot be made is a reported ERR_CONNECT_FAILED and a retry, never a throw
// out of the relay transport's session loop (#nextSession: `openLink(...).then(ok, failed)`).
// 8c64497 made openLink a plain function once `ws` is loaded, so an option `ws` could not take — a
// TLS CA that was neither text nor bytes — threw out of the loop: lookup() failed with a bare
// TypeError, nothing was reported, the loop stayed "running" with no session, and disconnect()
// left an unhandled TransportClosedError. Such options are now refused when the transport is made
// (InvalidConfigError naming the field); openLink's own no-throw is link.test.ts's; here the loop
// meets a socket constructor that throws (a browser's WebSocket refusing a URL does).
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTransport, deriveTopic } from '@rhizome/core';
import { createRelayServer, type RelayServer } from '@rhizome/relay';
import { RelayTransport } from '@rhizome/transport-relay';

let relay: RelayServer;
beforeAll(async () => {
  relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await relay.close();
});
afterEach(() => {
  vi.unstubAllGlobals();
});

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

describe('the relay transport checks its tls options when it is made', () => {
  it('refuses what a TLS connection could not use, with ERR_INVALID_CONFIG naming the field', () => {
    const url = `ws://127.0.0.1:${relay.port}`;
    const bad: Array<[unknown, string]> = [
      [123, 'tls'],
      [null, 'tls'],
      [[PEM], 'tls'],
      [{ ca: 123 }, 'tls.ca'],
      [{ ca: [PEM, 42] }, 'tls.ca'],
      [{ ca: { pem: PEM } }, 'tls.ca'],
      [{ ca: './relay-ca.pem' }, 'tls.ca'], // a file name instead of its content: Node would ignore it
      [{ rejectUnauthorized: 'no' }, 'tls.rejectUnauthorized'],
      [{ ca: PEM, cert: PEM, key: PEM }, 'tls.cert'], // no client certificates: not silently dropped
      [{ caa: PEM }, 'tls.caa'],
    ];
    for (const [tls, field] of bad) {
      const where = JSON.stringify(tls);
      expect(() => new RelayTransport({ url, tls: tls as never }), where).toThrow(expect.objectContaining({ name: 'InvalidConfigError', code: 'ERR_INVALID_CONFIG', field }));
    }
    // Through the public factory too (core checks only that tls is an object).
    expect(() => createTransport({ mode: 'relay', relayUrl: url, tls: { ca: 123 as unknown as string } })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: 'tls.ca' }),
    );
  });

  it('accepts PEM text, bytes, a list of them, and rejectUnauthorized', async () => {
    const url = `ws://127.0.0.1:${relay.port}`;
    const good = [{}, { ca: PEM }, { ca: new TextEncoder().encode(PEM) }, { ca: [PEM, Buffer.from(PEM)] }, { rejectUnauthorized: false }, { ca: PEM, rejectUnauthorized: true }];
    for (const tls of good) {
      const t = new RelayTransport({ url, tls });
      await t.disconnect();
    }
  });
});

describe('a relay socket that cannot be made', () => {
  it('is a reported ERR_CONNECT_FAILED and a failed lookup; disconnect is clean', async () => {
    vi.stubGlobal(
      'WebSocket',
      class {
        constructor() {
          throw new TypeError('this socket cannot be made');
        }
      },
    );
    const errors: Array<Error & { code?: string }> = [];
    let firstReport!: () => void;
    const reported = new Promise<void>((resolve) => (firstReport = resolve));
    const bad = new RelayTransport({
      url: `ws://127.0.0.1:${relay.port}`,
      implementation: 'global',
      timeoutMs: 1000,
      onError: (error) => {
        errors.push(error);
        firstReport();
      },
    });
    const failure: unknown = await bad.lookup(deriveTopic('never')).then(
      () => null,
      (error: unknown) => error,
    );
    expect(failure).toMatchObject({ code: 'ERR_CONNECT_FAILED' });
    await reported;
    expect(errors[0]).toMatchObject({ code: 'ERR_CONNECT_FAILED', message: expect.stringContaining('this socket cannot be made') });
    await bad.disconnect();
  });
});
