import { createServer, connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { remoteAddress, remoteEndpoint } from './peer-address.js';

describe('remoteEndpoint', () => {
  it('reads the remote address and port and leaves no cached copy on the socket; reading again gives the same', async () => {
    const server = createServer();
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = connect((server.address() as { port: number }).port, '127.0.0.1');
    try {
      await new Promise<void>((resolve) => client.once('connect', resolve));
      const socket = await accepted;
      const first = remoteEndpoint(socket);
      expect(first).toEqual({ address: '127.0.0.1', port: client.localPort });
      expect((socket as unknown as { _peername?: unknown })._peername).toBeUndefined();
      expect(remoteAddress(socket)).toBe('127.0.0.1');
      expect(remoteEndpoint(socket)).toEqual(first);
      socket.destroy();
    } finally {
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
