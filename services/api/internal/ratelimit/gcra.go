package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/scriptdeadline"
	"redis-session-app/services/api/internal/session"
)

// result is what one check of a limit found.
type result struct {
	// Allowed is 1 when the event was allowed, and then counted, and 0
	// when it was refused.
	Allowed int
	// RetryAfter is how long until an event would be allowed, or -1 when
	// this one was.
	RetryAfter time.Duration
}

// allowScript is the GCRA of github.com/go-redis/redis_rate v10.0.1
// (lua.go, its allowN script), which this package used until it needed a
// deadline that redis_rate's script cannot carry: with a slow Redis, a
// check the replica had given up on (and answered 503) ran later all the
// same and used up a token, so a client retrying through a stall of Redis
// was later refused with 429 for attempts that never happened. The script
// below is redis_rate's, with scriptdeadline.Prelude in front and each of
// its ARGV moved up by one to make room for the deadline; the rest, its
// maths and the key it keeps (the TAT as seconds since 2017) included, is
// unchanged, so that counts written by a version that used redis_rate
// carry over. One addition: ARGV[6] is how many events the limit must
// have left for the cost to be spent. redis_rate needs the cost itself;
// fewer lets the cost run the TAT ahead of the burst (the next events
// wait until it has been paid off): 1 for the reservation of a listing's
// largest cost (Limiter.AllowSessions), 0 for a charge made after the
// work it pays for (Limiter.ChargeListing), spent whatever is left.
//
// redis_rate is Copyright (c) 2013 The github.com/go-redis/redis_rate
// Authors, under the BSD 2-Clause licence:
//
//	Redistribution and use in source and binary forms, with or without
//	modification, are permitted provided that the following conditions are
//	met:
//
//	   * Redistributions of source code must retain the above copyright
//	notice, this list of conditions and the following disclaimer.
//	   * Redistributions in binary form must reproduce the above
//	copyright notice, this list of conditions and the following disclaimer
//	in the documentation and/or other materials provided with the
//	distribution.
//
//	THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS
//	"AS IS" AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT
//	LIMITED TO, THE IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR
//	A PARTICULAR PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT
//	OWNER OR CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL,
//	SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT
//	LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES; LOSS OF USE,
//	DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON ANY
//	THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT
//	(INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
//	OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
//
// redis_rate in turn credits its script to Pavel Pravosud, Copyright (c)
// 2017: https://github.com/rwz/redis-gcra/blob/master/vendor/perform_gcra_ratelimit.lua
//
// KEYS: the limit's key. ARGV: deadline, burst, rate, period (seconds),
// cost, the events that must be left. Returns {allowed, remaining,
// retry_after, reset_after}, the last two as strings of seconds.
var allowScript = redis.NewScript(scriptdeadline.Prelude + `
-- this script has side-effects, so it requires replicate commands mode
redis.replicate_commands()

local rate_limit_key = KEYS[1]
local burst = ARGV[2]
local rate = ARGV[3]
local period = ARGV[4]
local cost = tonumber(ARGV[5])
local need = tonumber(ARGV[6])

local emission_interval = period / rate
local increment = emission_interval * cost
local burst_offset = emission_interval * burst

-- redis returns time as an array containing two integers: seconds of the epoch
-- time (10 digits) and microseconds (6 digits). for convenience we need to
-- convert them to a floating point number. the resulting number is 16 digits,
-- bordering on the limits of a 64-bit double-precision floating point number.
-- adjust the epoch to be relative to Jan 1, 2017 00:00:00 GMT to avoid floating
-- point problems. this approach is good until "now" is 2,483,228,799 (Wed, 09
-- Sep 2048 01:46:39 GMT), when the adjusted value is 16 digits.
local jan_1_2017 = 1483228800
local now = redis.call("TIME")
now = (now[1] - jan_1_2017) + (now[2] / 1000000)

local tat = redis.call("GET", rate_limit_key)

if not tat then
  tat = now
else
  tat = tonumber(tat)
end

tat = math.max(tat, now)

local new_tat = tat + increment
local allow_at = new_tat - burst_offset

local diff = now - allow_at
local remaining = diff / emission_interval

-- how long until need events are left: diff * -1 when need is the cost
local short = tat + emission_interval * need - burst_offset - now

if need > 0 and short > 0 then
  local reset_after = tat - now
  local retry_after = short
  return {
    0, -- allowed
    0, -- remaining
    tostring(retry_after),
    tostring(reset_after),
  }
end

local reset_after = new_tat - now
if reset_after > 0 then
  redis.call("SET", rate_limit_key, new_tat, "EX", math.ceil(reset_after))
end
local retry_after = -1
return {cost, remaining, tostring(retry_after), tostring(reset_after)}
`)

// refundScript gives back cost events of a limit that were counted for a
// request answered 503, which must have changed nothing, or for the part
// of a listing's reservation that its listing did not use: the TAT moves
// back by their emission intervals, never to before now (a limit that has
// fully recovered is deleted). It carries a deadline like allowScript, so
// that a refund retried after a try Redis ran late is made once. A refund
// that lands more than one emission interval after its check may give
// back an event counted since instead of its own, which has decayed: at
// most one event, in the client's favour (for a listing's reservation, at
// most what it gives back, and only when the listing took longer than
// its reservation takes to decay).
//
// A refund that is tried again names a marker key of its own (KEYS[2]),
// set on its first run that finds something to give back, for as long as
// it is tried: a try whose answer was lost may have been made, and the
// next one then finds the marker and gives nothing back again.
//
// KEYS: the limit's key, and the marker's when the refund may be tried
// again. ARGV: deadline, rate, period (seconds), cost, the marker's
// lifetime (ms). Returns 1 when the key existed, 2 when the marker says
// the refund was made.
var refundScript = redis.NewScript(scriptdeadline.Prelude + `
local tat = redis.call("GET", KEYS[1])
if not tat then
  return 0
end
if KEYS[2] and not redis.call("SET", KEYS[2], "1", "NX", "PX", ARGV[5]) then
  return 2
end
local jan_1_2017 = 1483228800
local now = redis.call("TIME")
now = (now[1] - jan_1_2017) + (now[2] / 1000000)
local new_tat = tonumber(tat) - ARGV[3] / ARGV[2] * ARGV[4]
if new_tat <= now then
  redis.call("DEL", KEYS[1])
else
  redis.call("SET", KEYS[1], new_tat, "EX", math.ceil(new_tat - now))
end
return 1
`)

// refundN gives back cost events counted against lim under key, unless
// Redis runs it after the deadline that timeout and ctx set. A refund
// tried again passes the same marker key on every try (see refundScript);
// "" for one tried once.
func refundN(ctx context.Context, c redis.UniversalClient, timeout time.Duration, key string, lim session.Limit, cost int, marker string) error {
	dl, err := scriptdeadline.At(ctx, timeout)
	if err != nil {
		return err
	}
	keys := []string{key}
	if marker != "" {
		keys = append(keys, marker)
	}
	return refundScript.Run(ctx, c, keys, dl, lim.Rate, lim.Period.Seconds(), cost, (refundPatience + time.Second).Milliseconds()).Err()
}

// refundMarker names the marker of one refund of the limit key. Its hash
// tag is the limit key's own tag, or the whole key when it has none, so
// that on a Redis Cluster both lie in one slot, as a script's keys must.
func refundMarker(key string) (string, error) {
	id, err := session.RandomString(12)
	if err != nil {
		return "", err
	}
	return keyPrefix + "refund:{" + hashTag(key) + "}:" + id, nil
}

// hashTag returns what Redis Cluster hashes of key: the text between its
// first "{" and the first "}" after it when that is not empty, else the
// whole key.
func hashTag(key string) string {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if n := strings.IndexByte(key[open+1:], '}'); n > 0 {
			return key[open+1 : open+1+n]
		}
	}
	return key
}

// spend counts cost events against lim under key whether or not the
// limit has that many left, with gcra's deadline.
func spend(ctx context.Context, c redis.UniversalClient, timeout time.Duration, key string, lim session.Limit, cost int) error {
	_, err := gcra(ctx, c, timeout, key, lim, cost, 0)
	return err
}

// gcra counts cost events against lim under key when it has at least
// need of them left (need is at most cost; redis_rate's Limiter.AllowN
// is need == cost), unless Redis runs the script after the deadline that
// timeout (c's) and ctx set: then the script writes nothing and the error
// says so (scriptdeadline.Unavailable tells it apart).
func gcra(ctx context.Context, c redis.UniversalClient, timeout time.Duration, key string, lim session.Limit, cost, need int) (result, error) {
	dl, err := scriptdeadline.At(ctx, timeout)
	if err != nil {
		return result{}, err
	}
	v, err := allowScript.Run(ctx, c, []string{key}, dl, lim.BurstOf(), lim.Rate, lim.Period.Seconds(), cost, need).Slice()
	if err != nil {
		return result{}, err
	}
	if len(v) != 4 {
		return result{}, fmt.Errorf("GCRA script: got %d values, want 4", len(v))
	}
	allowed, ok := v[0].(int64)
	if !ok {
		return result{}, fmt.Errorf("GCRA script: allowed is %T, want an integer", v[0])
	}
	s, ok := v[2].(string)
	if !ok {
		return result{}, fmt.Errorf("GCRA script: retry_after is %T, want a string", v[2])
	}
	retryAfter, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return result{}, fmt.Errorf("GCRA script: retry_after: %w", err)
	}
	return result{Allowed: int(allowed), RetryAfter: seconds(retryAfter)}, nil
}

// seconds converts the script's seconds to a duration, -1 (none) kept as
// -1, as redis_rate does.
func seconds(f float64) time.Duration {
	if f == -1 {
		return -1
	}
	return time.Duration(f * float64(time.Second))
}
