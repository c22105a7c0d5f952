/**
 * The Lua scripts the instances run in Redis (each atomic there), and the key layout:
 *
 * | key | type | what | expiry |
 * |---|---|---|---|
 * | `<prefix>alive:<iid>` | string | this instance is alive | `instanceTtlMs`, refreshed every heartbeat |
 * | `<prefix>m:<topic hex>` | hash | field `<iid><session hex8>` → `[flags][peerId]`: who is listed on the topic, where | `refreshTtlMs`, refreshed while listed |
 * | `<prefix>p:<peerId hex>` | string | `<iid><session hex8><sha256(session key) hex>`: who holds the peer id | `refreshTtlMs`, refreshed while connected |
 *
 * Channels: `<prefix>i:<iid>` (records to one instance), `<prefix>hb` (heartbeats, BYE, RESET).
 * Entries of an instance whose `alive` key is gone are ignored by every script (and deleted
 * from topic hashes when one reads them), so a killed instance leaves nothing that counts.
 */

/** `register`: KEYS[1] topic hash; ARGV self iid, px, alive prefix, then field/value pairs. Returns the other live instances on the topic. */
export const REGISTER_LUA = `
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local seen = {}
local out = {}
local dead = {}
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  local iid = string.sub(f, 1, 16)
  if seen[iid] == nil then
    seen[iid] = iid == ARGV[1] and 1 or redis.call('EXISTS', ARGV[3] .. iid)
    if seen[iid] == 1 and iid ~= ARGV[1] then out[#out + 1] = iid end
  end
  if seen[iid] == 0 then dead[#dead + 1] = f end
end
for i = 1, #dead, 256 do redis.call('HDEL', KEYS[1], unpack(dead, i, math.min(i + 255, #dead))) end
return out
`;

/** `lookup`: KEYS[1] topic hash; ARGV self iid, alive prefix, max. Returns field, value pairs of other live instances. */
export const LOOKUP_LUA = `
local h = redis.call('HGETALL', KEYS[1])
local alive = {}
local out = {}
local max = tonumber(ARGV[3]) * 2
for i = 1, #h, 2 do
  local iid = string.sub(h[i], 1, 16)
  if alive[iid] == nil then alive[iid] = redis.call('EXISTS', ARGV[2] .. iid) end
  if alive[iid] == 1 and iid ~= ARGV[1] and #out < max then
    out[#out + 1] = h[i]
    out[#out + 1] = h[i + 1]
  end
end
return out
`;

/**
 * \`claim\`: KEYS[1] peer-id key; ARGV value (iid .. session hex8 .. keyhash), px, alive prefix,
 * mode (\`take\` for a HELLO, \`keep\` when re-registering after an outage).
 * Returns {0} (free, now ours), {1, holder} (held by a live instance with another key: refused),
 * {2, holder} (\`take\`, held with the same key: ours now, the holder must cut its session),
 * {3, holder} (\`keep\`, held with the same key elsewhere: the client moved, ours yields).
 */
export const CLAIM_LUA = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local iid = string.sub(cur, 1, 16)
  if iid ~= string.sub(ARGV[1], 1, 16) and redis.call('EXISTS', ARGV[3] .. iid) == 1 then
    local key = string.sub(ARGV[1], 25)
    if key == '' or string.sub(cur, 25) ~= key then return {1, string.sub(cur, 1, 24)} end
    if ARGV[4] == 'keep' then return {3, string.sub(cur, 1, 24)} end
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return {2, string.sub(cur, 1, 24)}
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {0}
`;

/** `release`: KEYS[1] a key; deleted only if its value is still ARGV[1]. */
export const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;
