package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts below are what makes each operation atomic. Keys a script
// builds itself from index members (prefix .. member) carry the same hash
// tag as the index, so in a Redis Cluster they live in the script's slot.
// Times arrive from Go in milliseconds, so tests control the clock; Redis's
// own expiry still decides when a key is gone.

// luaExtend sets the expiry of an index to at least at. PEXPIREAT GT alone
// would leave a key without a TTL untouched (GT counts no TTL as infinite),
// and an index must never live forever.
const luaExtend = `
local function extend(key, at)
  if redis.call('PTTL', key) == -1 then
    redis.call('PEXPIREAT', key, at)
  else
    redis.call('PEXPIREAT', key, at, 'GT')
  end
end
`

// createScript stores a session and indexes it, prunes index members whose
// session is gone and, when a cap applies, revokes the oldest sessions
// beyond it. It returns how many it revoked for the cap.
//
// KEYS: session key, index key.
// ARGV: member, createdAt, expiresAt, absolute end, cap (0 = none), session
// key prefix, then the session's field/value pairs.
var createScript = redis.NewScript(luaExtend + `
local member, prefix = ARGV[1], ARGV[6]
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], member)
extend(KEYS[2], ARGV[4])

local others = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if m ~= member then
    if redis.call('EXISTS', prefix .. m) == 1 then
      others[#others + 1] = m
    else
      redis.call('ZREM', KEYS[2], m)
    end
  end
end

local capped = 0
local max = tonumber(ARGV[5])
if max > 0 then
  -- others is ordered oldest first (ZRANGE by createdAt, ties within
  -- one millisecond in no particular order); the new session is never
  -- among them, so it always survives.
  for i = 1, #others + 1 - max do
    redis.call('DEL', prefix .. others[i])
    redis.call('ZREM', KEYS[2], others[i])
    capped = capped + 1
  end
end
return capped
`)

// touchScript slides the idle expiry of a session that still exists; a
// session revoked since it was read is not brought back. The new expiry is
// never past the absolute end and never earlier than the current one, so a
// slower replica cannot shorten what a faster one extended.
//
// KEYS: session key. ARGV: now, idle timeout (ms).
// Returns {lastSeen, expiresAt} as written, or nil when the key is gone.
var touchScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'abs', 'exp', 'seen')
local abs, cur, seen = tonumber(f[1]), tonumber(f[2]), tonumber(f[3])
if not abs or not cur or not seen then
  return false
end
local now = tonumber(ARGV[1])
local exp = math.min(now + tonumber(ARGV[2]), abs)
if exp <= cur then
  return {seen, cur}
end
redis.call('HSET', KEYS[1], 'seen', ARGV[1], 'exp', exp)
redis.call('PEXPIREAT', KEYS[1], exp)
return {now, exp}
`)

// refreshScript moves a session to a new key (a new token) with the same
// fields, seen and expiry renewed within the absolute end, and swaps the
// index member. Without RENAME: the new key is written, then the old one
// deleted, inside one script.
//
// KEYS: old session key, new session key, index key.
// ARGV: old member, new member, now, idle timeout (ms).
// Returns the new key's fields as HGETALL would, or nil when the old key is
// gone, unreadable or already over.
var refreshScript = redis.NewScript(luaExtend + `
local f = redis.call('HGETALL', KEYS[1])
if #f == 0 then
  return false
end
local h = {}
for i = 1, #f, 2 do
  h[f[i]] = f[i + 1]
end
local abs, ct, cur = tonumber(h['abs']), tonumber(h['ct']), tonumber(h['exp'])
local now = tonumber(ARGV[3])
-- Like Lookup, a session over by the caller's clock is not found even
-- if Redis has not expired it yet.
if not abs or not ct or not cur or cur <= now then
  return false
end
local exp = math.min(now + tonumber(ARGV[4]), abs)
redis.call('HSET', KEYS[2], unpack(f))
redis.call('HSET', KEYS[2], 'seen', ARGV[3], 'exp', exp)
redis.call('PEXPIREAT', KEYS[2], exp)
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[3], h['ct'], ARGV[2])
extend(KEYS[3], h['abs'])
return redis.call('HGETALL', KEYS[2])
`)

// revokeScript deletes a session and its index member and returns 1 if the
// session existed.
//
// KEYS: session key, index key. ARGV: member.
var revokeScript = redis.NewScript(`
local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return n
`)

// revokeAllScript deletes every session in an index and the index, and
// returns how many sessions existed.
//
// KEYS: index key. ARGV: session key prefix.
var revokeAllScript = redis.NewScript(`
local n = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  n = n + redis.call('DEL', ARGV[1] .. m)
end
redis.call('DEL', KEYS[1])
return n
`)

// revokeByIDScript deletes the session of an index whose public id matches,
// pruning members whose session is gone on the way. Returns 1 if found.
//
// KEYS: index key. ARGV: session key prefix, public id.
var revokeByIDScript = redis.NewScript(`
local found = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local id = redis.call('HGET', ARGV[1] .. m, 'id')
  if not id then
    redis.call('ZREM', KEYS[1], m)
  elseif id == ARGV[2] and found == 0 then
    redis.call('DEL', ARGV[1] .. m)
    redis.call('ZREM', KEYS[1], m)
    found = 1
  end
end
return found
`)

// listScript returns the listed fields of every live session in an index,
// flattened, one group of fields per session (an empty string for a missing
// field), and prunes members whose session is gone. HMGET answers all nils
// only for a key that does not exist (every session hash holds the listed
// fields), so it tells a gone session without another command.
//
// KEYS: index key. ARGV: session key prefix, then the field names.
var listScript = redis.NewScript(`
local fields = {unpack(ARGV, 2)}
local out = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local v = redis.call('HMGET', ARGV[1] .. m, unpack(fields))
  local live = false
  for i = 1, #fields do
    if v[i] then
      live = true
      break
    end
  end
  if live then
    for i = 1, #fields do
      out[#out + 1] = v[i] or ''
    end
  else
    redis.call('ZREM', KEYS[1], m)
  end
end
return out
`)

// createUserScript stores a user record unless one with the same key
// exists. Returns 1 when stored, 0 when the name is taken.
//
// KEYS: user key. ARGV: id, name as registered, password hash.
var createUserScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'name', ARGV[2], 'pw', ARGV[3])
return 1
`)
