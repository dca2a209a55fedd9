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

// luaRecord reads session records (see record.go; string.sub counts from
// 1, so each offset there is one more here). verified(v, verifier) tells
// whether v, a GET's answer, is a record of the format this version
// writes (decodeRecord's checks: positive times, the expiry within the
// absolute end, that end after the creation, a username within the
// value), whose verifier is the given one:
// every script that acts on a token checks the token's secret this way, in
// the same atomic step, so a token with a right session id and a wrong
// secret does nothing. It reads with pcall: a key of another type (written
// by hand, say) answers WRONGTYPE, which must not abort a script after it
// has written, and is no record.
const luaRecord = `
local function u48(s, i)
  local a, b, c, d, e, f = string.byte(s, i, i + 5)
  return ((((a * 256 + b) * 256 + c) * 256 + d) * 256 + e) * 256 + f
end
local function verified(v, verifier)
  return type(v) == 'string' and #v >= 51 and string.byte(v, 1) == 1 and string.sub(v, 2, 17) == verifier
    and u48(v, 18) > 0 and u48(v, 24) > 0 and u48(v, 30) > 0
    and u48(v, 30) <= u48(v, 36) and u48(v, 18) < u48(v, 36)
    and string.byte(v, 50) > 0 and 50 + string.byte(v, 50) <= #v
end
local function getRecord(key, verifier)
  local v = redis.pcall('GET', key)
  if verified(v, verifier) then
    return v
  end
  return nil
end
local function p48(n)
  local t = {}
  for k = 6, 1, -1 do
    t[k] = n % 256
    n = math.floor(n / 256)
  end
  return string.char(t[1], t[2], t[3], t[4], t[5], t[6])
end
`

// createScript stores a session record and its index member, puts its
// User-Agent into the user's UA table, ends the sessions past the absolute
// lifetime by their index score, and, when the user is over the cap, revokes
// the oldest sessions beyond it. It returns how many it revoked for the
// cap.
//
// Only when the index holds more than cap members does it look at them,
// and then at the cap + 1 newest: members whose session is gone are
// dropped, the cap newest live sessions (the new one always among them)
// stay, and any older live one is revoked. When those newest already hold
// cap live sessions, everything older is past the cap too, and up to cap
// of the oldest members go as well (only an index over the cap from
// before has any).
//
// The UA table stays at most cap + 1 entries: when it holds more than cap
// after the login's own entry, it keeps only the references of the live
// sessions among the cap + 1 newest index members (at most cap distinct
// ones once the cap is enforced) and the new one.
//
// KEYS: session key, index key, UA table key.
// ARGV: deadline, public id (the member), createdAt, expiresAt, absolute
// end, cap, cutoff (members scored at or below it are past the absolute
// lifetime), session key prefix, the record, its UA reference, the
// User-Agent.
var createScript = redis.NewScript(scriptdeadline.Prelude + luaExtend + `
local member, cap, prefix = ARGV[2], tonumber(ARGV[6]), ARGV[8]
-- The index first: an index of another type (written by hand) fails the
-- ZADD before anything is written, so the 503 that follows changed
-- nothing. A UA table of another type only costs the listing its
-- User-Agents.
redis.call('ZADD', KEYS[2], ARGV[3], member)
extend(KEYS[2], ARGV[5])
redis.call('SET', KEYS[1], ARGV[9], 'PXAT', ARGV[4])
redis.pcall('HSET', KEYS[3], ARGV[10], ARGV[11])
extend(KEYS[3], ARGV[5])

-- Sessions created at or before the cutoff are past the absolute lifetime
-- by this replica's clock. Their keys go with their members: a replica
-- whose clock is behind (or that still runs a longer lifetime) would
-- otherwise serve a session that no listing, cap or logout-all reaches
-- any more. At most cap of them per login.
local past = redis.call('ZRANGE', KEYS[2], '-inf', ARGV[7], 'BYSCORE', 'LIMIT', 0, cap)
if #past > 0 then
  local ks = {}
  for i, m in ipairs(past) do
    ks[i] = prefix .. m
  end
  redis.call('DEL', unpack(ks))
  redis.call('ZREM', KEYS[2], unpack(past))
end

local capped = 0
local n = redis.call('ZCARD', KEYS[2])
if n > cap then
  local live, drop, revoke = 1, {}, {}
  local function revokeMember(m)
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
  if #revoke > 0 then
    capped = redis.call('DEL', unpack(revoke))
  end
  if #drop > 0 then
    redis.call('ZREM', KEYS[2], unpack(drop))
  end
end

local held = redis.pcall('HLEN', KEYS[3])
if type(held) == 'number' and held > cap then
  local keep = {[ARGV[10]] = true}
  for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, cap, 'REV')) do
    local r = redis.pcall('GETRANGE', prefix .. m, 41, 48)
    if type(r) == 'string' and #r == 8 then
      keep[r] = true
    end
  end
  local del = {}
  for _, f in ipairs(redis.call('HKEYS', KEYS[3])) do
    if not keep[f] then
      del[#del + 1] = f
    end
  end
  if #del > 0 then
    redis.call('HDEL', KEYS[3], unpack(del))
  end
end
return capped
`)

// touchScript slides the idle expiry of a session that still exists under
// the token's secret; a session revoked or refreshed since it was read is
// not brought back or touched. The new expiry is never past the absolute
// end and never earlier than the current one, so a slower replica cannot
// shorten what a faster one extended.
//
// KEYS: session key. ARGV: deadline, now, idle timeout (ms), verifier.
// Returns {lastSeen, expiresAt} as written, or nil when the session is
// gone or has another secret.
var touchScript = redis.NewScript(scriptdeadline.Prelude + luaRecord + `
local v = getRecord(KEYS[1], ARGV[4])
if not v then
  return false
end
local seen, cur, abs = u48(v, 24), u48(v, 30), u48(v, 36)
local now = tonumber(ARGV[2])
local exp = math.min(now + tonumber(ARGV[3]), abs)
if exp <= cur then
  return {seen, cur}
end
-- lastSeen and expiresAt are adjacent; SETRANGE keeps the key's expiry.
redis.call('SETRANGE', KEYS[1], 23, p48(now) .. p48(exp))
redis.call('PEXPIREAT', KEYS[1], exp)
return {now, exp}
`)

// refreshScript gives a session a new secret: its record, under the same
// key (so the same id, index member and createdAt), gets the new verifier,
// seen and expiry renewed within the absolute end. The old token stops
// working with the write; of concurrent refreshes the first to run finds
// its verifier and wins, the others find another one.
//
// KEYS: session key, UA table key.
// ARGV: deadline, old verifier, new verifier, now, idle timeout (ms),
// maximum lifetime (ms).
// Returns {the new record, its User-Agent, empty when missing}, or nil when the session
// is gone, has another secret or is already over.
var refreshScript = redis.NewScript(scriptdeadline.Prelude + luaRecord + `
local v = getRecord(KEYS[1], ARGV[2])
if not v then
  return false
end
local ct, cur, abs = u48(v, 18), u48(v, 30), u48(v, 36)
local now = tonumber(ARGV[4])
-- Like Lookup, a session over by the caller's clock, or by the maximum
-- lifetime now in force, is not found even if Redis has not expired it.
if cur <= now or abs <= now or ct + tonumber(ARGV[6]) <= now then
  return false
end
local exp = math.min(now + tonumber(ARGV[5]), abs)
local nv = string.sub(v, 1, 1) .. ARGV[3] .. string.sub(v, 18, 23) .. p48(now) .. p48(exp) .. string.sub(v, 36)
redis.call('SET', KEYS[1], nv, 'PXAT', exp)
local ua = redis.pcall('HGET', KEYS[2], string.sub(v, 42, 49))
if type(ua) ~= 'string' then
  ua = ''
end
return {nv, ua}
`)

// revokeScript deletes a session and its index member when the token's
// secret is the session's, and returns 1; then it also writes the caller's
// receipt (see Sessions.receipt). A session already gone has its member
// dropped too; one with another secret is left alone.
//
// KEYS: session key, index key, receipt key. ARGV: deadline, public id,
// verifier, the receipt's lifetime (ms).
var revokeScript = redis.NewScript(scriptdeadline.Prelude + luaRecord + `
local v = redis.pcall('GET', KEYS[1])
if not verified(v, ARGV[3]) then
  if not v then
    redis.call('ZREM', KEYS[2], ARGV[2])
  end
  return 0
end
-- The index first: one of another type fails before anything is deleted.
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[4])
return 1
`)

// revokeAllScript deletes the sessions of the oldest batch members of an
// index and those members. It returns {sessions that existed, members
// left}: more than zero only for an index that held more than the batch,
// which the caller then runs it again on.
//
// On the first call of a logout-all (ARGV[4] true) it returns {-1, 0} and
// deletes nothing when the caller's session is gone (revoked by a request
// that raced this one, or expired) or has another secret.
//
// Every call that gets past that check writes its receipt, holding what
// it returns, "<ended> <members left>" (see Sessions.receipt).
//
// KEYS: index key, the caller's session key, receipt key. ARGV: deadline,
// session key prefix, batch, whether this is the first call (and checks
// the caller's session), the receipt's lifetime (ms), the caller's
// verifier.
var revokeAllScript = redis.NewScript(scriptdeadline.Prelude + luaRecord + `
if ARGV[4] == '1' and not getRecord(KEYS[2], ARGV[6]) then
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

// revokeByIDScript deletes the session of a public id and its index
// member: a fixed handful of keys, whatever the size of the index. The
// session key of an id is in the caller's user's keys, so no other user's
// session can be named. Returns 1 if the session existed, and then also
// writes the caller's receipt (see Sessions.receipt).
//
// It returns -1 and deletes nothing when the caller's own session is gone
// (revoked by a request that raced this one: two sessions revoking each
// other at once would otherwise both succeed; or expired) or has another
// secret. A revoked token revokes nothing, as it logs nothing out, and
// knowing a session's id (listings show them) is not knowing its secret.
//
// KEYS: the session key of the id, index key, receipt key, the caller's
// session key. ARGV: deadline, the id, the receipt's lifetime (ms), the
// caller's verifier.
var revokeByIDScript = redis.NewScript(scriptdeadline.Prelude + luaRecord + `
if not getRecord(KEYS[4], ARGV[4]) then
  return -1
end
-- The index first: one of another type fails before anything is deleted.
redis.call('ZREM', KEYS[2], ARGV[2])
local n = redis.call('DEL', KEYS[1])
if n == 1 then
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
end
return n
`)

// listTidyScript drops index members whose session a listing found gone.
// A listing reads with plain commands (see Sessions.List); this runs only
// when it found something to tidy, and checks again, since a session may
// have been created under a member between the listing's reads and this
// script (a refresh keeps its key, so it never is).
//
// It runs without a deadline: what it writes changes nothing a client can
// see. Its work is bounded by the cap, like the listing's.
//
// KEYS: index key. ARGV: session key prefix, then the gone members.
var listTidyScript = redis.NewScript(`
local prefix = ARGV[1]
local gone = {}
for i = 2, #ARGV do
  if redis.call('EXISTS', prefix .. ARGV[i]) == 0 then
    gone[#gone + 1] = ARGV[i]
  end
end
if #gone > 0 then
  redis.call('ZREM', KEYS[1], unpack(gone))
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
