// Package scriptdeadline gives the Lua scripts that write to Redis a
// deadline, so that a script Redis runs after the caller stopped waiting
// changes nothing. The session store (redisstore) and the rate limiter
// (ratelimit) both use it: what Redis runs after the replica answered
// 503 changes neither a session nor a rate limit's count. (A limit check
// Redis answered in time stays counted even when the request then fails
// with 503 further on, as any attempt does.)
//
// A script that writes carries a deadline: the moment the caller stops
// waiting for it, the earlier of the context's deadline and now plus the
// client's read timeout, less a margin. Redis compares it with its own
// clock (TIME) and does nothing when it runs the script later: a slow
// Redis still runs what it has queued after the caller gave up, and a
// request answered 503 must have changed nothing.
//
// The margin covers what lies between the check and the caller's
// give-up: the rest of the script, the reply's trip back, the replica
// getting round to read it, and the skew between this replica's clock and
// Redis's. It assumes clocks kept within a few milliseconds of each other
// by NTP, as on any maintained host, and takes a quarter of the timeout
// (125 ms at the default 500 ms): far more than that skew and than any
// script here runs, and more than a container's CPU throttling usually
// stalls a process (its quota period is 100 ms). An answer that arrives
// later than the margin allows (a slow path back, a connection cut
// mid-reply, a replica stalled between Redis's reply and reading it) is
// settled by a read once Redis can no longer run the script (Settle), so
// the request is answered by what happened; only when that read fails
// too does a 503 stand for a script that ran.
//
// A Redis clock ahead of the replica's by more than the margin makes
// scripts give up early, and one ahead by more than the timeout makes
// every write fail. That is not silent: each such answer is a Redis error
// ("LATE Redis time ... ms is past the deadline ..."), counted in
// api_redis_errors_total while api_redis_up stays 1, and answered 503.
// A Redis clock behind the replica's lets a script run up to the skew
// after the deadline, which the margin absorbs up to its size.
//
// A script uses it thus: its Lua source starts with Prelude, its first
// ARGV is At(ctx, ClientTimeout(client)), and the error of running it is
// wrapped by Unavailable.
package scriptdeadline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/session"
)

// Prelude is the prelude of every script that writes. ARGV[1] is the
// moment, in Unix milliseconds by the replica's clock, after which the
// replica no longer waits for the answer (see At). A script that
// Redis runs later than that - it was queued behind a slow command, a
// fork or a paused process - must change nothing, since the replica has
// already answered 503. Redis 7 replicates a script's effects, not the
// script, so reading TIME before writing is allowed.
const Prelude = `
local function late()
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if now > tonumber(ARGV[1]) then
    return redis.error_reply('LATE Redis time ' .. now .. ' ms is past the deadline ' .. ARGV[1])
  end
end
local err = late()
if err then
  return err
end
`

// DefaultTimeout is the timeout ClientTimeout assumes for a client that
// never times out, or is of an unknown kind, so that its scripts still
// carry a deadline. It is also redisstore's default timeout of a call.
const DefaultTimeout = 500 * time.Millisecond

// marginDivisor sets the margin as a fraction of the timeout.
const marginDivisor = 4

// errTooLate is returned without a round trip when the caller's context
// leaves no time for a script to be worth sending.
var errTooLate = errors.New("no time left before the deadline")

// At returns the deadline of a script sent now, in Unix
// milliseconds, for a client whose calls time out after timeout.
func At(ctx context.Context, timeout time.Duration) (int64, error) {
	now := time.Now()
	end := now.Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(end) {
		end = d
	}
	end = end.Add(-timeout / marginDivisor)
	if !end.After(now) {
		return 0, errTooLate
	}
	return end.UnixMilli(), nil
}

// ClientTimeout returns how long c waits for an answer, which
// redisstore.NewClient sets from ClientOptions.Timeout. Reading it from
// the client keeps the deadline of a script in step with the timeout that
// actually applies. A client that never times out (or is of an unknown
// kind) gets DefaultTimeout, so that scripts still carry a deadline.
func ClientTimeout(c redis.UniversalClient) time.Duration {
	var t time.Duration
	switch c := c.(type) {
	case *redis.Client: // one node or a Sentinel-managed master
		t = c.Options().ReadTimeout
	case *redis.ClusterClient:
		t = c.Options().ReadTimeout
	}
	if t <= 0 {
		return DefaultTimeout
	}
	return t
}

// IsLate reports whether err is Redis's refusal of a script it ran after
// its deadline (the Prelude's error).
func IsLate(err error) bool { return redis.HasErrorPrefix(err, "LATE") }

// Unavailable wraps the error of a call that failed as
// session.ErrUnavailable, saying when Redis ran a script too late.
func Unavailable(op string, err error) error {
	if IsLate(err) {
		return fmt.Errorf("%w: %s: Redis ran it after the replica stopped waiting, so it changed nothing (if this happens while Redis is fast, its clock is ahead of this replica's): %w",
			session.ErrUnavailable, op, err)
	}
	return fmt.Errorf("%w: %s: %w", session.ErrUnavailable, op, err)
}

// Settle reports whether a script that failed with err ran after all, by
// asking ran once Redis can no longer run it. An answer of Redis's own
// that was lost or came late (a slow network path, a connection cut
// mid-reply) looks like an outage, yet Redis may have run the script in
// time: answering 503 then would tell the client that nothing changed
// when a token rotated or a session ended. After the deadline plus the
// margin, where a call that timed out already is, Redis no longer runs
// it, so one read then tells the outcome for good.
//
// Settle returns false without a round trip when err is an answer of
// Redis's (a refusal, LATE included: nothing ran), when the script never
// left (no connection could be had) or when the client hung up (nobody
// reads the answer); and false when ran fails too, since the outcome is
// then unknown. ran gets half a timeout of its own, past whatever
// deadline ctx carries (a request's budget for its store calls): a 503
// there would claim that nothing changed. A write that Redis never
// answers thus gets its 503 at most one and a half timeouts after it was
// sent (750 ms at the default).
func Settle(ctx context.Context, err error, deadline int64, timeout time.Duration, ran func(context.Context) (bool, error)) bool {
	if !mayHaveRun(err) || errors.Is(ctx.Err(), context.Canceled) {
		return false
	}
	ctx = context.WithoutCancel(ctx)
	if wait := time.Until(time.UnixMilli(deadline).Add(timeout / marginDivisor)); wait > 0 {
		time.Sleep(wait) // until Redis can no longer run the script
	}
	ctx, cancel := context.WithTimeout(ctx, timeout/2)
	defer cancel()
	ok, err := ran(ctx)
	return err == nil && ok
}

// mayHaveRun tells a failure after which Redis may have run the script
// (its answer did not arrive) from one after which it cannot have: an
// answer of Redis's, no connection to send it on, the caller gone.
func mayHaveRun(err error) bool {
	var reply redis.Error
	var op *net.OpError
	switch {
	case err == nil, errors.As(err, &reply), errors.Is(err, context.Canceled),
		errors.Is(err, errTooLate), errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrClosed):
		return false
	case errors.As(err, &op) && op.Op == "dial":
		return false
	}
	return true
}
