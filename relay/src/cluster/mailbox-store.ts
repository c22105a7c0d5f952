import { MailboxOp, MailboxStatus, decodeMailboxHeader } from '@rhizome/core';
import { Redis } from 'ioredis';
import { recordBytes, type MailboxCommit, type MailboxCommitResult, type MailboxSnapshot, type MailboxStore, type MailboxStoreStats } from '../mailbox/store.js';
import type { ResolvedClusterOptions } from './options.js';

/** Bytes of a record header (fixed by the mailbox wire). */
const HEADER_BYTES = 117;

/**
 * Keys (under the cluster prefix): `mb:<key hex>` hash {head, hdr, bytes, entries, at};
 * `mbr:<key hex>` sorted set of records (score counter, member `[counter u64][header][payload]`);
 * `mbidx` sorted set of mailboxes by last write (for expiry and the mailbox count);
 * `mbstats` hash {entries, bytes} over every mailbox.
 *
 * `commit`: the sequence check (as `checkMailboxSequence`), the quotas and the write in one
 * script, so two instances (or two writers) never both win.
 */
const COMMIT_LUA = `
local op = tonumber(ARGV[1])
local counter = tonumber(ARGV[2])
local prev = tonumber(ARGV[3])
local length = tonumber(ARGV[4])
local size = tonumber(ARGV[5])
local exists = redis.call('EXISTS', KEYS[1]) == 1
local head, bytes, entries = 0, 0, 0
if exists then
  local v = redis.call('HMGET', KEYS[1], 'head', 'bytes', 'entries')
  head, bytes, entries = tonumber(v[1]), tonumber(v[2]), tonumber(v[3])
end
local status = ${MailboxStatus.OK}
if prev ~= head then status = ${MailboxStatus.STALE}
elseif op == ${MailboxOp.DEPOSIT} then
  if counter ~= head + 1 then status = ${MailboxStatus.STALE} elseif not exists then status = ${MailboxStatus.NO_BASE} end
elseif op == ${MailboxOp.SNAPSHOT} then
  if counter <= head then status = ${MailboxStatus.STALE} end
elseif op == ${MailboxOp.TRUNCATE} then
  if length ~= 0 then status = ${MailboxStatus.BAD_RECORD} elseif counter <= head then status = ${MailboxStatus.STALE} end
else status = ${MailboxStatus.BAD_RECORD} end
if status ~= ${MailboxStatus.OK} then return {status, head, bytes, entries} end
local replaces = op ~= ${MailboxOp.DEPOSIT}
local nbytes, nentries = bytes + size, entries + 1
if replaces then nbytes, nentries = size, 1 end
if replaces and size > tonumber(ARGV[9]) then return {${MailboxStatus.TOO_LARGE}, head, bytes, entries} end
if nbytes > tonumber(ARGV[9]) or nentries > tonumber(ARGV[10]) then return {${MailboxStatus.FULL}, head, bytes, entries} end
if not exists and redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[11]) then return {${MailboxStatus.RELAY_FULL}, head, bytes, entries} end
if replaces then redis.call('DEL', KEYS[2]) end
redis.call('HSET', KEYS[1], 'head', counter, 'hdr', ARGV[6], 'bytes', nbytes, 'entries', nentries, 'at', ARGV[8])
redis.call('ZADD', KEYS[2], counter, ARGV[7])
redis.call('ZADD', KEYS[3], ARGV[8], ARGV[12])
redis.call('HINCRBY', KEYS[4], 'bytes', nbytes - bytes)
redis.call('HINCRBY', KEYS[4], 'entries', nentries - entries)
return {${MailboxStatus.OK}, counter, nbytes, nentries}
`;

/** `read`: KEYS mb, mbr; ARGV after. Returns {hdr or false, head, bytes, entries, records...}. */
const READ_LUA = `
local v = redis.call('HMGET', KEYS[1], 'hdr', 'head', 'bytes', 'entries')
if not v[1] then return {false, 0, 0, 0} end
local out = {v[1], v[2], v[3], v[4]}
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf')) do out[#out + 1] = m end
return out
`;

/** `expire`: KEYS mbidx, mbstats; ARGV before, prefix. Deletes mailboxes last written before. */
const EXPIRE_LUA = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, 1000)
for _, id in ipairs(ids) do
  local v = redis.call('HMGET', ARGV[2] .. 'mb:' .. id, 'bytes', 'entries')
  redis.call('HINCRBY', KEYS[2], 'bytes', -(tonumber(v[1]) or 0))
  redis.call('HINCRBY', KEYS[2], 'entries', -(tonumber(v[2]) or 0))
  redis.call('DEL', ARGV[2] .. 'mb:' .. id, ARGV[2] .. 'mbr:' .. id)
  redis.call('ZREM', KEYS[1], id)
end
return #ids
`;

interface MailboxScripts {
  rhzMbCommit(k1: string, k2: string, k3: string, k4: string, ...args: Array<string | number | Buffer>): Promise<[number, number, number, number]>;
  rhzMbReadBuffer(k1: string, k2: string, after: number): Promise<Array<Buffer | null>>;
  rhzMbExpire(k1: string, k2: string, before: number, prefix: string): Promise<number>;
}

function view(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * The relay mailbox in Redis, for a scaled-out relay (`--redis` with `--mailbox`): every
 * instance serves every mailbox, under the same quotas and expiry as the SQLite store
 * (checked in Redis, atomically per mailbox). Its own connection, so a mailbox transfer never
 * waits behind routing traffic. Unlike the routing state these keys are the one thing kept at
 * rest in Redis: sealed records, deleted `ttlSeconds` after a mailbox's last write.
 */
export class RedisMailboxStore implements MailboxStore {
  readonly #redis: Redis & MailboxScripts;
  readonly #prefix: string;
  #closed = false;

  constructor(options: ResolvedClusterOptions) {
    this.#prefix = options.prefix;
    this.#redis = new Redis(options.url, {
      enableOfflineQueue: true,
      maxRetriesPerRequest: 1,
      connectTimeout: 5000,
      retryStrategy: (times: number) => Math.round(Math.min(5000, 100 * 2 ** Math.min(times, 6)) * (0.5 + Math.random() / 2)),
      connectionName: 'rhizome-relay-mailbox',
    }) as Redis & MailboxScripts;
    this.#redis.on('error', () => undefined);
    this.#redis.defineCommand('rhzMbCommit', { numberOfKeys: 4, lua: COMMIT_LUA });
    this.#redis.defineCommand('rhzMbRead', { numberOfKeys: 2, lua: READ_LUA });
    this.#redis.defineCommand('rhzMbExpire', { numberOfKeys: 2, lua: EXPIRE_LUA });
  }

  #keys(mailbox: Uint8Array): [string, string] {
    const hex = Buffer.from(mailbox.buffer, mailbox.byteOffset, mailbox.byteLength).toString('hex');
    return [`${this.#prefix}mb:${hex}`, `${this.#prefix}mbr:${hex}`];
  }

  async read(mailbox: Uint8Array, after: number): Promise<MailboxSnapshot> {
    this.#assertOpen();
    const [mb, mbr] = this.#keys(mailbox);
    const out = await this.#redis.rhzMbReadBuffer(mb, mbr, after);
    const hdr = out[0];
    if (hdr === null || hdr === undefined) return { head: null, headCounter: 0, records: [], bytes: 0, entries: 0 };
    const num = (b: Buffer | null | undefined): number => Number(b?.toString() ?? 0);
    const records = out.slice(4).map((m) => {
      const member = m!;
      return { counter: Number(member.readBigUInt64BE(0)), header: view(member.subarray(8, 8 + HEADER_BYTES)), payload: view(member.subarray(8 + HEADER_BYTES)) };
    });
    return { head: view(hdr), headCounter: num(out[1]), records, bytes: num(out[2]), entries: num(out[3]) };
  }

  async commit(c: MailboxCommit): Promise<MailboxCommitResult> {
    this.#assertOpen();
    const header = decodeMailboxHeader(c.header);
    const [mb, mbr] = this.#keys(c.mailbox);
    const hex = mb.slice(this.#prefix.length + 3);
    if (header === null) {
      const current = await this.read(c.mailbox, Number.MAX_SAFE_INTEGER);
      return { status: MailboxStatus.BAD_RECORD, head: current.headCounter, bytes: current.bytes, entries: current.entries };
    }
    const member = Buffer.allocUnsafe(8 + c.header.length + c.payload.length);
    member.writeBigUInt64BE(BigInt(c.counter), 0);
    member.set(c.header, 8);
    member.set(c.payload, 8 + c.header.length);
    const r = await this.#redis.rhzMbCommit(
      mb,
      mbr,
      `${this.#prefix}mbidx`,
      `${this.#prefix}mbstats`,
      header.op,
      header.counter,
      header.prev,
      header.length,
      recordBytes(c.payload.length),
      Buffer.from(c.header),
      member,
      c.now,
      c.limits.maxMailboxBytes,
      c.limits.maxEntries,
      c.limits.maxMailboxes,
      hex,
    );
    return { status: Number(r[0]), head: Number(r[1]), bytes: Number(r[2]), entries: Number(r[3]) };
  }

  async expire(lastWriteBefore: number): Promise<number> {
    this.#assertOpen();
    let total = 0;
    for (;;) {
      const n = Number(await this.#redis.rhzMbExpire(`${this.#prefix}mbidx`, `${this.#prefix}mbstats`, lastWriteBefore, this.#prefix));
      total += n;
      if (n < 1000) return total;
    }
  }

  async stats(): Promise<MailboxStoreStats> {
    this.#assertOpen();
    const [mailboxes, totals] = await Promise.all([this.#redis.zcard(`${this.#prefix}mbidx`), this.#redis.hmget(`${this.#prefix}mbstats`, 'entries', 'bytes')]);
    return { mailboxes, entries: Number(totals[0] ?? 0), bytes: Number(totals[1] ?? 0) };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#redis.quit().catch(() => this.#redis.disconnect());
    this.#redis.disconnect();
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('mailbox store is closed');
  }
}
