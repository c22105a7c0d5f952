// The net link (transport-relay/src/net-link.ts, Node's default) against the `ws` link on what a
// user sets for a relay's address: TLS (ca, SNI for a host name, rejectUnauthorized, a certificate
// for another name), an IPv6 literal, a path with a query. Both must open or both refuse with
// ERR_CONNECT_FAILED, and what the server sees of the opening must be the same.
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { openLink, type Link } from '../packages/transport-relay/src/link.js';
import { FOREIGN_CERT, TEST_CERT, TEST_KEY } from './fixtures/tls.js';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

interface Seen {
  servername: string | false | null | undefined;
  url: string | undefined;
  host: string | undefined;
}

async function server(tls: boolean, host: string): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const http: HttpServer | HttpsServer = tls ? createHttpsServer({ cert: TEST_CERT, key: TEST_KEY }) : createHttpServer();
  const wss = new WebSocketServer({ server: http });
  wss.on('connection', (ws, req) => {
    seen.push({ servername: (req.socket as TLSSocket).servername, url: req.url, host: req.headers.host });
    // (Not at once: the ws link drops frames read before its owner set the handler.)
    setTimeout(() => ws.send(Buffer.from([1, 2, 3])), 30);
  });
  await new Promise<void>((resolve) => http.listen(0, host, resolve));
  cleanup.push(() => new Promise<void>((resolve) => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    http.close(() => resolve());
  }));
  return { port: (http.address() as AddressInfo).port, seen };
}

async function open(url: string, implementation: 'net' | 'ws', tls?: { ca?: string; rejectUnauthorized?: boolean }): Promise<string> {
  let link: Link;
  try {
    link = await openLink(url, { timeoutMs: 3000, maxPayload: 1 << 20, implementation, ...(tls ? { tls } : {}) });
  } catch (error) {
    return `refused ${(error as { code?: string }).code}`;
  }
  const frame = await new Promise<number[]>((resolve) => {
    link.handler = { onLinkFrame: (_l, f) => resolve([...f]), onLinkClose() {} };
  });
  link.close(1000, 'bye');
  return `open ${frame.join(',')}`;
}

describe('the net link opens (or refuses) where the ws link does', () => {
  it.each([
    ['wss, a host name, the CA given (SNI sent)', 'localhost', { ca: TEST_CERT }, 'open 1,2,3'],
    ['wss, an IP, the CA given (no SNI)', '127.0.0.1', { ca: TEST_CERT }, 'open 1,2,3'],
    ['wss, no CA', '127.0.0.1', undefined, 'refused ERR_CONNECT_FAILED'],
    ['wss, another CA', 'localhost', { ca: FOREIGN_CERT }, 'refused ERR_CONNECT_FAILED'],
    ['wss, no CA, rejectUnauthorized false', 'localhost', { rejectUnauthorized: false }, 'open 1,2,3'],
  ])('%s', async (_name, host, tls, expected) => {
    const { port, seen } = await server(true, host === 'localhost' ? '127.0.0.1' : host);
    const url = `wss://${host}:${port}/relay/path?token=a%20b&x=1`;
    const results = { net: await open(url, 'net', tls), ws: await open(url, 'ws', tls) };
    expect(results).toEqual({ net: expected, ws: expected });
    if (expected.startsWith('open')) {
      expect(seen.length).toBe(2);
      expect(seen[0]).toEqual(seen[1]);
      expect(seen[0]!.url).toBe('/relay/path?token=a%20b&x=1');
      expect(seen[0]!.servername).toBe(host === 'localhost' ? 'localhost' : false);
    }
  });

  it('ws on an IPv6 literal', async (ctx) => {
    let s: Awaited<ReturnType<typeof server>>;
    try {
      s = await server(false, '::1');
    } catch {
      ctx.skip();
      return;
    }
    const url = `ws://[::1]:${s.port}/?a=1`;
    expect({ net: await open(url, 'net'), ws: await open(url, 'ws') }).toEqual({ net: 'open 1,2,3', ws: 'open 1,2,3' });
    expect(s.seen.map((x) => [x.url, x.host])).toEqual([
      ['/?a=1', `[::1]:${s.port}`],
      ['/?a=1', `[::1]:${s.port}`],
    ]);
  });
});
