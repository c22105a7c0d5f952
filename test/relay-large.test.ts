// Large catch-ups and values through a relay at its DEFAULT limits (issue 10, defect 3). The
// relay's byte bucket (16 MiB/s, 64 MiB burst) used to cut a sender mid catch-up; it then
// reconnected and resent the same catch-up forever. The relay now announces its rates (LIMITS)
// and the client paces under them, so 256 MiB crosses in about (256 − 32) / (0.85 × 16) ≈ 17 s.
import { get } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createTransport } from '@rhizome/core';
import { startRelayProcess, type RelayProcess } from '@rhizome/relay/testing';
import { openDatabase, type Database } from '@rhizome/sync';
import { nextEvent } from './sync-helpers.js';

const MiB = 1024 * 1024;
const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

async function metric(relay: RelayProcess, name: string, label = ''): Promise<number> {
  // A fresh connection per scrape (no keep-alive socket that the relay may close meanwhile).
  const text = await new Promise<string>((resolve, reject) => {
    get(`${relay.url.replace('ws', 'http')}/metrics`, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
  const line = text.split('\n').find((l) => l.startsWith(`${name}${label}`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

/**
 * A real relay process with nothing but its defaults (no rate flags), and `open(id)` for replicas
 * on it whose transport errors land in `errors`; all stopped after the test.
 */
async function defaultRelay(): Promise<{ relay: RelayProcess; errors: Array<Error & { code?: string }>; open: (id: string) => Promise<Database> }> {
  const relay = await startRelayProcess(['--port', '0', '--host', '127.0.0.1']);
  cleanup.push(() => relay.stop());
  const errors: Array<Error & { code?: string }> = [];
  const open = async (id: string): Promise<Database> => {
    const db = await openDatabase({ id, transport: createTransport({ mode: 'relay', relayUrl: relay.url, onError: (e) => errors.push(e) }) });
    cleanup.push(() => db.close());
    return db;
  };
  return { relay, errors, open };
}

describe('large catch-ups through a relay at default limits', () => {
  it('a late joiner catches up a 256 MiB value (one step 2 of 256 MiB) without the sender being cut', { timeout: 120_000 }, async () => {
    const { relay, errors, open } = await defaultRelay();
    const id = `large-${process.pid}`;
    const a = await open(id);
    const big = 'x'.repeat(256 * MiB);
    a.put('big', { blob: big, n: 1 });
    a.put('small', { ok: true });

    const b = await open(id);
    const arrived = nextEvent(b, (e) => e.type === 'node-upsert' && e.id === 'big', 'the 256 MiB value to arrive', 100_000);
    await arrived;
    expect((b.get('big')?.blob as string).length).toBe(256 * MiB);
    expect(b.get('small')).toEqual({ ok: true });
    await b.whenSynced({ timeoutMs: 30_000 });
    // Crossed in one go: nobody was cut for its rate, and no session was lost along the way.
    expect(await metric(relay, 'rhizome_relay_drops_total', '{reason="byte_rate_exceeded"}')).toBe(0);
    expect(await metric(relay, 'rhizome_relay_drops_total', '{reason="frame_rate_exceeded"}')).toBe(0);
    expect(errors.filter((e) => e.code === 'ERR_RELAY_REJECTED' || e.code === 'ERR_CONNECT_FAILED')).toEqual([]);
    const bytesIn = await metric(relay, 'rhizome_relay_bytes_in_total');
    expect(bytesIn).toBeGreaterThan(256 * MiB);
    expect(bytesIn).toBeLessThan(300 * MiB); // sent once, not resent after cuts
  });

  it('a 100 MiB value put while the peer is connected (the live path: one update, relay BROADCAST) crosses without the sender being cut', { timeout: 120_000 }, async () => {
    // The second reproducer: a single 100 MB value between two connected replicas was cut
    // at the 64 MiB byte burst and resent forever. Live updates take another path than a
    // catch-up (sync/src/broadcast.ts, paced by the relay client's sendBroadcast).
    const { relay, errors, open } = await defaultRelay();
    const id = `large-live-${process.pid}`;
    const a = await open(id);
    const b = await open(id);
    await a.whenSynced({ minPeers: 1, timeoutMs: 30_000 });
    const arrived = nextEvent(b, (e) => e.type === 'node-upsert' && e.id === 'big', 'the 100 MiB value to arrive', 100_000);
    a.put('big', { blob: 'y'.repeat(100 * MiB) });
    await arrived;
    expect((b.get('big')?.blob as string).length).toBe(100 * MiB);
    expect(await metric(relay, 'rhizome_relay_drops_total', '{reason="byte_rate_exceeded"}')).toBe(0);
    expect(await metric(relay, 'rhizome_relay_drops_total', '{reason="frame_rate_exceeded"}')).toBe(0);
    expect(errors.filter((e) => e.code === 'ERR_RELAY_REJECTED' || e.code === 'ERR_CONNECT_FAILED')).toEqual([]);
    const bytesIn = await metric(relay, 'rhizome_relay_bytes_in_total');
    expect(bytesIn).toBeGreaterThan(100 * MiB);
    expect(bytesIn).toBeLessThan(130 * MiB); // sent once
  });
});
