import { describe, expect, it } from 'vitest';
import { parseRelayArgs } from '../args.js';
import { createRelayServer } from '../server.js';
import { resolveClusterOptions } from './options.js';

describe('scale-out options', () => {
  it('defaults: 5 s instance expiry, heartbeats at a quarter of it', () => {
    expect(resolveClusterOptions('redis://127.0.0.1:6379')).toMatchObject({ url: 'redis://127.0.0.1:6379', prefix: 'rhizome:relay:', instanceTtlMs: 5000, heartbeatMs: 1250 });
    expect(resolveClusterOptions({ url: 'rediss://r.example:6380', instanceTtlMs: 2000 })).toMatchObject({ heartbeatMs: 500 });
  });

  it('bad values are ERR_INVALID_CONFIG naming the field', async () => {
    expect(() => resolveClusterOptions('http://127.0.0.1:6379')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: 'redis' }));
    expect(() => resolveClusterOptions('not a url')).toThrow(expect.objectContaining({ field: 'redis' }));
    expect(() => resolveClusterOptions({ url: 'redis://h:1', instanceTtlMs: 10 })).toThrow(expect.objectContaining({ field: 'redis.instanceTtlMs' }));
    expect(() => resolveClusterOptions({ url: 'redis://h:1', instanceTtlMs: 1000, heartbeatMs: 900 })).toThrow(expect.objectContaining({ field: 'redis.heartbeatMs' }));
    await expect(createRelayServer({ port: 0, redis: 'tcp://x' })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'redis' });
  });

  it('--redis, RHIZOME_RELAY_REDIS, --redis-prefix and --redis-ttl-ms', () => {
    expect(parseRelayArgs(['--redis', 'redis://127.0.0.1:7000'])).toEqual({ redis: { url: 'redis://127.0.0.1:7000' } });
    expect(parseRelayArgs([], { RHIZOME_RELAY_REDIS: 'redis://r:1' })).toEqual({ redis: { url: 'redis://r:1' } });
    expect(parseRelayArgs(['--redis', 'redis://a:1', '--redis-prefix', 'p:', '--redis-ttl-ms', '3000'], { RHIZOME_RELAY_REDIS: 'redis://b:1' })).toEqual({
      redis: { url: 'redis://a:1', prefix: 'p:', instanceTtlMs: 3000 },
    });
    expect(() => parseRelayArgs(['--redis-ttl-ms', '3000'])).toThrow(expect.objectContaining({ field: '--redis-ttl-ms' }));
    expect(() => parseRelayArgs(['--redis', 'ftp://x'])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: 'redis' }));
  });
});
