// openLink never throws: whatever goes wrong while a relay socket is being made comes back as a
// rejection, which the relay transport's session loop (#nextSession: `openLink(...).then(ok,
// failed)`) turns into a reported ERR_CONNECT_FAILED and a retry. 8c64497 made openLink a plain
// function (no async wrapper) once `ws` is loaded, so an option `ws` cannot take — here a TLS CA
// that is not a string or bytes, which the transport does not check — threw out of the session
// loop: lookup() failed with a bare TypeError, nothing was reported, the loop stayed "running"
// with no session, and disconnect() left an unhandled TransportClosedError.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveTopic } from '@rhizome/core';
import { createRelayServer, type RelayServer } from '@rhizome/relay';
import { RelayTransport } from '@rhizome/transport-relay';

let relay: RelayServer;
beforeAll(async () => {
  relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await relay.close();
});

describe('a relay socket that cannot be made', () => {
  it('is a reported ERR_CONNECT_FAILED and a failed lookup, also once ws is loaded; disconnect is clean', async () => {
    // A first transport loads `ws` (openLink's synchronous path is the one after that).
    const good = new RelayTransport({ url: `ws://127.0.0.1:${relay.port}` });
    await good.lookup(deriveTopic('loads-ws'));
    await good.disconnect();

    const errors: Array<Error & { code?: string }> = [];
    let firstReport!: () => void;
    const reported = new Promise<void>((resolve) => (firstReport = resolve));
    const bad = new RelayTransport({
      url: `ws://127.0.0.1:${relay.port}`,
      tls: { ca: 123 as unknown as string },
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
    expect(errors[0]!.name).toBe('TypeError');
    await bad.disconnect();
  });
});
