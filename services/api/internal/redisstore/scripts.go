package redisstore

import (
	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/scriptdeadline"
)

// The Lua scripts below are what makes each operation atomic. Keys a script
// builds itself (prefix .. member, prefix .. public id) carry the same hash
// tag as the keys it is given, so in a Redis Cluster they live in the
// script's slot. Session times arrive from Go in milliseconds, so tests
// control the clock; Redis's own expiry still decides when a key is gone.
//
// Bounded work: a login checks at most the cap + 1 newest index members
// and removes at most cap older ones, a listing reads the cap newest,
// logout-all deletes at most maxPerUserLimit sessions per call, and every
// other script touches a fixed handful of keys. So the time one call holds
// Redis does not grow with how many sessions a user has ever had, whatever
// the index holds: members of sessions that ended by expiry stay in it
// until a login or a listing drops them, and an index left over the cap
// by a version without one (or under a higher cap) is worked down a
// bounded slice per login.
//
// Every script that writes starts with scriptdeadline.Prelude: its ARGV[1]
// is the deadline, and Redis running it after that changes nothing.

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

// luaDropIDMap deletes the id map entry of the session at key (index member
// member), if it has one and it names that session. An entry is only ever
// believed together with its session, so this only spares Redis the
// memory of an entry until it would have expired.
//
// It reads with pcall: a key of another type than expected (written by
// hand, say) answers WRONGTYPE, which must not abort the script it runs
// in after that script has written.
const luaDropIDMap = `
local function dropIDMap(key, member, idmapPrefix)
  local id = redis.pcall('HGET', key, 'id')
  if type(id) ~= 'string' then
    return
  end
  if redis.pcall('GET', idmapPrefix .. id) == member then
    redis.call('DEL', idmapPrefix .. id)
  end
end
`

// createScript stores a session, its id map entry and its index member,
// drops index members past the absolute lifetime by score, and, when the
// user is over the cap, revokes the oldest sessions beyond it. It returns
// how many it revoked for the cap.
//
// Only when the index holds more than cap members does it look at them,
// and then at the cap + 1 newest: members whose session is gone are
// dropped, the cap newest live sessions (the new one always among them)
// stay, and any older live one is revoked. When those newest already hold
// cap live sessions, everything older is past the cap too, and up to cap
// of the oldest members go as well (only an index over the cap from
// before has any).
//
// KEYS: session key, index key, id map key.
// ARGV: deadline, member, createdAt, expiresAt, absolute end, cap, cutoff
// (members scored at or below it are past the absolute lifetime), session
// key prefix, id map prefix, then the session's field/value pairs.
//
// A session it revokes for the cap loses its id map entry too.
var createScript = redis.NewScript(scriptdeadline.Prelude + luaExtend + luaDropIDMap + `
local member, cap, prefix = ARGV[2], tonumber(ARGV[6]), ARGV[8]
redis.call('HSET', KEYS[1], unpack(ARGV, 10))
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
redis.call('SET', KEYS[3], member, 'PXAT', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], member)
extend(KEYS[2], ARGV[5])

-- ZREMRANGEBYSCORE has no LIMIT; the lowest ranks are the lowest scores.
local over = redis.call('ZCOUNT', KEYS[2], '-inf', ARGV[7])
if over > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, math.min(over, cap) - 1)
end

local n = redis.call('ZCARD', KEYS[2])
if n <= cap then
  return 0
end
local live, drop, revoke = 1, {}, {}
-- Revoking a member drops its id map entry while its session still holds
-- the id to find it by.
local function revokeMember(m)
  dropIDMap(prefix .. m, m, ARGV[9])
  drop[#drop + 1] = m
  revoke[#revoke + 1] = prefix .. m
end
for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, cap, 'REV')) do
  if m ~= member then
    if redis.call('EXISTS', prefix .. m) == 0 then
      drop[#drop + 1] = m
    elseif live < cap then
      live = live + 1
    else
      revokeMember(m)
    end
  end
end
if live >= cap and n > cap + 1 then
  for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, math.min(n - cap - 1, cap) - 1)) do
    if m ~= member then
      revokeMember(m)
    end
  end
end
local capped = 0
if #revoke > 0 then
  capped = redis.call('DEL', unpack(revoke))
end
if #drop > 0 then
  redis.call('ZREM', KEYS[2], unpack(drop))
end
return capped
`)

// touchScript slides the idle expiry of a session that still exists, and
// of its id map entry; a session revoked since it was read is not brought
// back. The new expiry is never past the absolute end and never earlier
// than the current one, so a slower replica cannot shorten what a faster
// one extended.
//
// KEYS: session key. ARGV: deadline, now, idle timeout (ms), id map prefix.
// Returns {lastSeen, expiresAt} as written, or nil when the key is gone.
var touchScript = redis.NewScript(scriptdeadline.Prelude + `
local f = redis.call('HMGET', KEYS[1], 'abs', 'exp', 'seen', 'id')
local abs, cur, seen = tonumber(f[1]), tonumber(f[2]), tonumber(f[3])
if not abs or not cur or not seen or not f[4] then
  return false
end
local now = tonumber(ARGV[2])
local exp = math.min(now + tonumber(ARGV[3]), abs)
if exp <= cur then
  return {seen, cur}
end
redis.call('HSET', KEYS[1], 'seen', ARGV[2], 'exp', exp)
redis.call('PEXPIREAT', KEYS[1], exp)
-- A no-op for a session of the previous version, which has no entry
-- until it is listed or refreshed.
redis.call('PEXPIREAT', ARGV[4] .. f[4], exp)
return {now, exp}
`)

// refreshScript moves a session to a new key (a new token) with the same
// fields, seen and expiry renewed within the absolute end, swaps the index
// member (the score, createdAt, stays) and points the id map entry at the
// new member. Without RENAME: the new key is written, then the old one
// deleted, inside one script.
//
// KEYS: old session key, new session key, index key.
// ARGV: deadline, old member, new member, now, idle timeout (ms), maximum
// lifetime (ms), id map prefix, then the names of the fields to return.
// Returns the new key's values of those fields, or nil when the old key is
// gone, unreadable or already over.
var refreshScript = redis.NewScript(scriptdeadline.Prelude + luaExtend + `
local f = redis.call('HGETALL', KEYS[1])
if #f == 0 then
  return false
end
local h = {}
for i = 1, #f, 2 do
  h[f[i]] = f[i + 1]
end
local abs, ct, cur = tonumber(h['abs']), tonumber(h['ct']), tonumber(h['exp'])
local now = tonumber(ARGV[4])
-- Like Lookup, a session over by the caller's clock, or by the maximum
-- lifetime now in force, is not found even if Redis has not expired it.
if not abs or not ct or not cur or not h['id'] or cur <= now or abs <= now or ct + tonumber(ARGV[6]) <= now then
  return false
end
local exp = math.min(now + tonumber(ARGV[5]), abs)
redis.call('HSET', KEYS[2], unpack(f))
redis.call('HSET', KEYS[2], 'seen', ARGV[4], 'exp', exp, 'idm', '1')
redis.call('PEXPIREAT', KEYS[2], exp)
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('ZADD', KEYS[3], h['ct'], ARGV[3])
extend(KEYS[3], h['abs'])
redis.call('SET', ARGV[7] .. h['id'], ARGV[3], 'PXAT', exp)
-- An absent field answers '' rather than nil, as a lookup reads it.
local v = redis.call('HMGET', KEYS[2], unpack(ARGV, 8))
for i = 1, #ARGV - 7 do
  if not v[i] then
    v[i] = ''
  end
end
return v
`)

// revokeScript deletes a session, its index member and its id map entry,
// and returns 1 if the session existed. Then it also writes the caller's
// receipt (see Sessions.receipt).
//
// KEYS: session key, index key, receipt key. ARGV: deadline, member, id
// map prefix, the receipt's lifetime (ms).
var revokeScript = redis.NewScript(scriptdeadline.Prelude + luaDropIDMap + `
dropIDMap(KEYS[1], ARGV[2], ARGV[3])
local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
if n == 1 then
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[4])
end
return n
`)

// revokeAllScript deletes the sessions of the oldest batch members of an
// index and those members. It returns {sessions that existed, members
// left}: more than zero only for an index that held more than the batch,
// which the caller then runs it again on. The sessions' id map entries
// are left to expire with them (at the latest when each session would
// have): finding them would cost a read per index member, and an entry is
// only ever believed together with the session it names.
//
// On the first call of a logout-all (ARGV[4] true) it returns {-1, 0} and
// deletes nothing when the caller's session is gone: revoked by a request
// that raced this one, or expired.
//
// Every call that gets past that check writes its receipt, holding what
// it returns, "<ended> <members left>" (see Sessions.receipt).
//
// KEYS: index key, the caller's session key, receipt key. ARGV: deadline,
// session key prefix, batch, whether this is the first call (and checks
// the caller's session), the receipt's lifetime (ms).
var revokeAllScript = redis.NewScript(scriptdeadline.Prelude + `
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[2]) == 0 then
  return {-1, 0}
end
local ms = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)
if #ms == 0 then
  redis.call('SET', KEYS[3], '0 0', 'PX', ARGV[5])
  return {0, 0}
end
local ks = {}
for i, m in ipairs(ms) do
  ks[i] = ARGV[2] .. m
end
local n = redis.call('DEL', unpack(ks))
redis.call('ZREM', KEYS[1], unpack(ms))
local left = redis.call('ZCARD', KEYS[1])
redis.call('SET', KEYS[3], n .. ' ' .. left, 'PX', ARGV[5])
return {n, left}
`)

// revokeByIDScript deletes the session an id map entry names, the entry
// and the index member: three keys, whatever the size of the index.
// Returns 1 if the session existed, and then also writes the caller's
// receipt (see Sessions.receipt).
//
// It returns -1 and deletes nothing when the caller's own session is gone:
// revoked by a request that raced this one (two sessions revoking each
// other at once would otherwise both succeed), or expired. A revoked
// token revokes nothing, as it logs nothing out.
//
// KEYS: id map key, index key, receipt key, the caller's session key.
// ARGV: deadline, session key prefix, the receipt's lifetime (ms).
var revokeByIDScript = redis.NewScript(scriptdeadline.Prelude + `
if redis.call('EXISTS', KEYS[4]) == 0 then
  return -1
end
local m = redis.call('GET', KEYS[1])
if not m then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], m)
local n = redis.call('DEL', ARGV[2] .. m)
if n == 1 then
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
end
return n
`)

// listRepairScript tidies what a listing found: it drops index members
// whose session is gone, and gives a live session of the previous version
// (one without the id map flag) its id map entry, once, so that it can be
// revoked by id. A listing reads with plain commands (see Sessions.List);
// this runs only when it found something to tidy, and checks again, since
// a session may have ended between the listing's reads and this script.
//
// It runs without a deadline: what it writes changes nothing a client can
// see. Its work is bounded by the cap, like the listing's.
//
// KEYS: index key. ARGV: session key prefix, id map prefix, the id map
// flag's field name, the number of gone members, those members, then one
// (member, public id, expiry) triple per session to give an id map entry.
var listRepairScript = redis.NewScript(`
local prefix, idmap, flag, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local gone = {}
for i = 5, 4 + n do
  if redis.call('EXISTS', prefix .. ARGV[i]) == 0 then
    gone[#gone + 1] = ARGV[i]
  end
end
if #gone > 0 then
  redis.call('ZREM', KEYS[1], unpack(gone))
end
for i = 5 + n, #ARGV, 3 do
  local key = prefix .. ARGV[i]
  if redis.call('EXISTS', key) == 1 then
    redis.call('SET', idmap .. ARGV[i + 1], ARGV[i], 'PXAT', ARGV[i + 2])
    redis.call('HSET', key, flag, '1')
  end
end
return #gone
`)

// createUserScript stores a user record unless one with the same key
// exists. Returns 1 when stored, 0 when the name is taken.
//
// KEYS: user key. ARGV: deadline, id, name as registered, password hash.
var createUserScript = redis.NewScript(scriptdeadline.Prelude + `
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'id', ARGV[2], 'name', ARGV[3], 'pw', ARGV[4])
return 1
`)
