import type { Socket } from 'node:net';

/**
 * The remote address and port of a socket, read without leaving Node's cache of them behind.
 *
 * `socket.remoteAddress` / `remotePort` call `getpeername(2)` once and keep the answer on the
 * socket (`_peername`: an object with the address, family and port) for as long as the socket
 * lives — about 70 bytes of heap per idle connection that a relay holding thousands of them pays
 * for a value it reads only while accepting and upgrading. This drops that cache after reading;
 * Node asks the kernel again if anything reads the address later (while the socket is open).
 */
export function remoteEndpoint(socket: Socket): { address: string | undefined; port: number | undefined } {
  const address = socket.remoteAddress;
  const port = socket.remotePort;
  const cached = socket as unknown as { _peername?: unknown };
  if (cached._peername !== undefined && cached._peername !== null) cached._peername = undefined;
  return { address, port };
}

/** The remote address of a socket (see {@link remoteEndpoint}); undefined once it is closed. */
export function remoteAddress(socket: Socket): string | undefined {
  return remoteEndpoint(socket).address;
}
