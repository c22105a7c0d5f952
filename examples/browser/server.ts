// The browser example's one command: builds app.ts with esbuild (through the browser entry of
// @rhizome/sync), serves it on 127.0.0.1 next to a local relay, and prints the URL.
// Run from the repository root: npm run example:browser  (options: --port 5173 --relay-port 8787 --db ID)
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';
import { generateDatabaseId } from '@rhizome/core';
import { createRelayServer } from '@rhizome/relay';

const HERE = import.meta.dirname;

/** A running example: page server plus relay. */
export interface BrowserExample {
  /** The page, with the database id in its fragment: open it in two windows. */
  url: string;
  relayUrl: string;
  dbId: string;
  close(): Promise<void>;
}

/** Builds the page: one ES module, minified, for browsers. */
export async function buildExample(): Promise<string> {
  const result = await esbuild.build({
    entryPoints: [join(HERE, 'app.ts')],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    // Workspace packages from their sources; an app outside the repo drops this line.
    conditions: ['rhizome-source'],
    minify: true,
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

/** Starts the relay and the page server (port 0 picks free ports). */
export async function startBrowserExample(options: { host?: string; port?: number; relayPort?: number; dbId?: string } = {}): Promise<BrowserExample> {
  const host = options.host ?? '127.0.0.1';
  const dbId = options.dbId ?? generateDatabaseId();
  const app = await buildExample();
  const html = readFileSync(join(HERE, 'index.html'), 'utf8');
  const relay = await createRelayServer({ port: options.relayPort ?? 8787, host });
  const config = JSON.stringify({ relayUrl: relay.url, dbId });
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const files: Record<string, [string, string]> = {
      '/': ['text/html; charset=utf-8', html],
      '/index.html': ['text/html; charset=utf-8', html],
      '/app.js': ['text/javascript; charset=utf-8', app],
      '/config.json': ['application/json', config],
    };
    const file = files[path];
    if (!file) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': file[0], 'cache-control': 'no-store' }).end(file[1]);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 5173, host, resolve);
    });
  } catch (error) {
    await relay.close();
    throw error;
  }
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}/#${dbId}`,
    relayUrl: relay.url,
    dbId,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await relay.close();
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { port: { type: 'string', default: '5173' }, 'relay-port': { type: 'string', default: '8787' }, db: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } },
  });
  const example = await startBrowserExample({
    host: values.host,
    port: Number(values.port),
    relayPort: Number(values['relay-port']),
    ...(values.db ? { dbId: values.db } : {}),
  });
  console.log('Rhizome browser example');
  console.log(`  open      ${example.url}   (in two windows, or two browsers)`);
  console.log(`  relay     ${example.relayUrl}`);
  console.log(`  replica   npx rhizome sync ${example.dbId} --db replica.db --relay ${example.relayUrl}`);
  console.log('Ctrl-C stops.');
  const stop = (): void => {
    void example.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
