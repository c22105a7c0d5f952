import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_HEAD_BYTES, mayBeginUpgrade, parseUpgradeRequest, UpgradeSniffer } from './upgrade-request.js';

const socket = {} as Socket;

function parse(head: string): ReturnType<typeof parseUpgradeRequest> {
  const data = Buffer.from(`${head}\r\n\r\n`, 'latin1');
  return parseUpgradeRequest(data, data.length - 4, socket);
}

const CANONICAL = [
  'GET /relay?x=1 HTTP/1.1',
  'Host: 127.0.0.1:4444',
  'Sec-WebSocket-Version: 13',
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
  'Connection: Upgrade',
  'Upgrade: websocket',
  'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits',
  'User-Agent: test',
];

describe('parseUpgradeRequest', () => {
  it('takes a canonical upgrade: what ws reads, names in any case, values trimmed', () => {
    const req = parse([...CANONICAL, 'origin:  https://example.org \t'].join('\r\n'));
    expect(req).not.toBeNull();
    expect(req!.method).toBe('GET');
    expect(req!.url).toBe('/relay?x=1');
    expect(req!.socket).toBe(socket);
    expect(req!.headers).toEqual({
      host: '127.0.0.1:4444',
      upgrade: 'websocket',
      connection: 'Upgrade',
      origin: 'https://example.org',
      'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      'sec-websocket-version': '13',
      'x-forwarded-for': undefined,
    });
    // Behind a proxy: X-Forwarded-For lines joined as Node joins them.
    expect(parse([...CANONICAL, 'X-Forwarded-For: 203.0.113.9', 'x-forwarded-for: 198.51.100.1'].join('\r\n'))!.headers['x-forwarded-for']).toBe('203.0.113.9, 198.51.100.1');
    // A browser's Connection header lists more than one token.
    expect(parse(CANONICAL.map((l) => (l.startsWith('Connection') ? 'connection: keep-alive, UPGRADE' : l)).join('\r\n'))).not.toBeNull();
  });

  it('leaves everything else to Node\'s parser (null)', () => {
    const variants: Array<[string, (lines: string[]) => string[]]> = [
      ['another method', (l) => [l[0]!.replace('GET', 'POST'), ...l.slice(1)]],
      ['HTTP/1.0', (l) => [l[0]!.replace('1.1', '1.0'), ...l.slice(1)]],
      ['an absolute-form target', (l) => ['GET http://h/ HTTP/1.1', ...l.slice(1)]],
      ['a repeated key', (l) => [...l, 'Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==']],
      ['a repeated Upgrade', (l) => [...l, 'upgrade: websocket']],
      ['a folded line', (l) => [...l.slice(0, 2), ' folded', ...l.slice(2)]],
      ['a line without a colon', (l) => [...l, 'nonsense']],
      ['a name with a space', (l) => [...l, 'Bad Name: x']],
      ['a control byte in a value', (l) => [...l, 'X-A: a\x00b']],
      ['a bare LF in a value', (l) => [...l, 'X-A: a\nb']],
      ['a non-ASCII byte', (l) => [...l, 'X-A: caf\xe9']],
      ['a subprotocol', (l) => [...l, 'Sec-WebSocket-Protocol: chat']],
      ['a body length', (l) => [...l, 'Content-Length: 0']],
      ['a transfer encoding', (l) => [...l, 'Transfer-Encoding: chunked']],
      ['no key', (l) => l.filter((x) => !x.startsWith('Sec-WebSocket-Key'))],
      ['no version', (l) => l.filter((x) => !x.startsWith('Sec-WebSocket-Version'))],
      ['no upgrade token in Connection', (l) => l.map((x) => (x.startsWith('Connection') ? 'Connection: keep-alive' : x))],
      ['Upgrade other than websocket', (l) => l.map((x) => (x.startsWith('Upgrade') ? 'Upgrade: h2c' : x))],
    ];
    for (const [what, change] of variants) expect(parse(change([...CANONICAL]).join('\r\n')), what).toBeNull();
    expect(parse('GET /healthz HTTP/1.1\r\nHost: x')).toBeNull();
  });
});

describe('mayBeginUpgrade', () => {
  it('holds for every prefix of every head parseUpgradeRequest takes, and fails once the bytes cannot begin one', () => {
    const heads = [
      CANONICAL.join('\r\n'),
      [...CANONICAL, 'origin:\t https://example.org \t'].join('\r\n'),
      ['GET /~a!b"c<d>{e}|f\\g^h`i HTTP/1.1', ...CANONICAL.slice(1).map((l) => l.toLowerCase())].join('\r\n'),
    ];
    for (const head of heads) {
      expect(parse(head), head).not.toBeNull();
      const data = Buffer.from(`${head}\r\n\r\n`, 'latin1');
      for (let i = 1; i <= data.length; i++) expect(mayBeginUpgrade(data.subarray(0, i)), JSON.stringify(data.subarray(0, i).toString('latin1'))).toBe(true);
    }
    for (const bad of ['HELLO', 'G\x00', 'POST /', 'GET  /', 'GET *', '\x16\x03\x01', '\r\nGET /', 'GET / HTTP/1.1\nHost', 'GET / HTTP/1.1\rHost', 'GET /\x7f', 'GET /\x80', 'GET / HTTP/1.1\r\nHost: \x00']) {
      expect(mayBeginUpgrade(Buffer.from(bad, 'latin1')), JSON.stringify(bad)).toBe(false);
    }
  });
});

describe('UpgradeSniffer (real sockets on 127.0.0.1)', () => {
  const servers: Server[] = [];
  const clients: Socket[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  });

  /** A server whose sockets go through a sniffer; resolves each hand-off with what it got. */
  async function sniffing(): Promise<{ port: number; next: () => Promise<{ kind: 'upgrade' | 'http'; req?: IncomingMessage; head?: Buffer; bytes?: Buffer }> }> {
    const outcomes: Array<{ kind: 'upgrade' | 'http'; req?: IncomingMessage; head?: Buffer; bytes?: Buffer }> = [];
    const waiters: Array<(o: (typeof outcomes)[number]) => void> = [];
    const push = (o: (typeof outcomes)[number]): void => {
      const w = waiters.shift();
      if (w) w(o);
      else outcomes.push(o);
    };
    const sniffer = new UpgradeSniffer({
      upgrade: (req, _socket, head) => push({ kind: 'upgrade', req, head: Buffer.from(head) }),
      // As Node's HTTP listener would: it reads what the sniffer emits next, and then the socket.
      http: (socket) => {
        let bytes = Buffer.alloc(0);
        socket.on('data', (d: Buffer) => {
          bytes = Buffer.concat([bytes, d]);
          if (bytes.includes('\r\n\r\n') || bytes.length > MAX_HEAD_BYTES) push({ kind: 'http', bytes });
        });
      },
      error: () => {},
    });
    const server = createServer((s) => sniffer.take(s));
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    return { port, next: () => (outcomes.length > 0 ? Promise.resolve(outcomes.shift()!) : new Promise((r) => waiters.push(r))) };
  }

  async function send(port: number, pieces: string[]): Promise<Socket> {
    const c = connect(port, '127.0.0.1');
    clients.push(c);
    c.on('error', () => {});
    await once(c, 'connect');
    for (const p of pieces) {
      c.write(Buffer.from(p, 'latin1'));
      // Separate reads on the server side: wait for the bytes to leave before the next piece.
      await new Promise((r) => setTimeout(r, 20));
    }
    return c;
  }

  it('an upgrade in pieces, with bytes after its head: one hand-off, the head and the rest apart', async () => {
    const s = await sniffing();
    const request = `${CANONICAL.join('\r\n')}\r\n\r\n`;
    await send(s.port, [request.slice(0, 7), request.slice(7, 60), `${request.slice(60)}\x82\x00`]);
    const got = await s.next();
    expect(got.kind).toBe('upgrade');
    expect(got.req!.url).toBe('/relay?x=1');
    expect([...got.head!]).toEqual([0x82, 0x00]);
  });

  it('anything else goes to the HTTP listener with every byte read so far, in order', async () => {
    const s = await sniffing();
    const healthz = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
    await send(s.port, [healthz.slice(0, 10), healthz.slice(10)]);
    const got = await s.next();
    expect(got.kind).toBe('http');
    expect(got.bytes!.toString('latin1')).toBe(healthz);
    // A head over the limit is not buffered here any longer: handed over once it passes it.
    const big = `${CANONICAL.join('\r\n')}\r\nX-Big: ${'a'.repeat(MAX_HEAD_BYTES)}\r\n\r\n`;
    await send(s.port, [big]);
    const got2 = await s.next();
    expect(got2.kind).toBe('http');
    expect(big.startsWith(got2.bytes!.toString('latin1'))).toBe(true);
  });
});
