package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/session"
)

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
// stalls a process (its quota period is 100 ms). A replica that stalls
// longer than the margin between Redis's reply and reading it still
// answers 503 for a script that ran: the margin makes that window small,
// it cannot close it.
//
// A Redis clock ahead of the replica's by more than the margin makes
// scripts give up early, and one ahead by more than the timeout makes
// every write fail. That is not silent: each such answer is a Redis error
// ("LATE Redis time ... ms is past the deadline ..."), counted in
// api_redis_errors_total while api_redis_up stays 1, and answered 503.
// A Redis clock behind the replica's lets a script run up to the skew
// after the deadline, which the margin absorbs up to its size.

// deadlineMarginDivisor sets the margin as a fraction of the timeout.
const deadlineMarginDivisor = 4

// errTooLate is returned without a round trip when the caller's context
// leaves no time for a script to be worth sending.
var errTooLate = errors.New("no time left before the deadline")

// deadline returns the deadline of a script sent now, in Unix
// milliseconds, for a client whose calls time out after timeout.
func deadline(ctx context.Context, timeout time.Duration) (int64, error) {
	now := time.Now()
	end := now.Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(end) {
		end = d
	}
	end = end.Add(-timeout / deadlineMarginDivisor)
	if !end.After(now) {
		return 0, errTooLate
	}
	return end.UnixMilli(), nil
}

// clientTimeout returns how long c waits for an answer, which NewClient
// sets from ClientOptions.Timeout. Reading it from the client keeps the
// deadline of a script in step with the timeout that actually applies.
// A client that never times out (or is of an unknown kind) gets the
// default, so that scripts still carry a deadline.
func clientTimeout(c redis.UniversalClient) time.Duration {
	var t time.Duration
	switch c := c.(type) {
	case *redis.Client: // one node or a Sentinel-managed master
		t = c.Options().ReadTimeout
	case *redis.ClusterClient:
		t = c.Options().ReadTimeout
	}
	if t <= 0 {
		return defaultTimeout
	}
	return t
}

// unavailable wraps the error of a call that failed as
// session.ErrUnavailable, saying when Redis ran a script too late.
func unavailable(op string, err error) error {
	if redis.HasErrorPrefix(err, "LATE") {
		return fmt.Errorf("%w: %s: Redis ran it after the replica stopped waiting, so it changed nothing (if this happens while Redis is fast, its clock is ahead of this replica's): %w",
			session.ErrUnavailable, op, err)
	}
	return fmt.Errorf("%w: %s: %w", session.ErrUnavailable, op, err)
}
