package httpapi

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"redis-session-app/services/api/internal/metrics"
	"redis-session-app/services/api/internal/session"
)

// PasswordHasher hashes and checks passwords with bounded concurrency. Both
// methods return session.ErrBusy when no hashing slot frees up in time.
type PasswordHasher interface {
	// Hash returns the encoded hash of password.
	Hash(ctx context.Context, password string) (string, error)
	// Verify reports whether password matches encoded. An empty encoded
	// hash (unknown user) is checked against a dummy hash so that it costs
	// the same time, and always reports false.
	Verify(ctx context.Context, password, encoded string) (bool, error)
}

// RateLimiter limits login and register attempts, and the listings of a
// user's sessions, across all replicas. Its errors wrap
// session.ErrUnavailable when the store cannot be reached: the caller fails
// closed.
type RateLimiter interface {
	// AllowLogin counts one attempt against the IP's limit and, when
	// username is not empty, against that username's limit (without regard
	// to case).
	AllowLogin(ctx context.Context, ip, username string) (session.RateDecision, error)
	// AllowRegister counts one attempt against the IP's limit.
	AllowRegister(ctx context.Context, ip string) (session.RateDecision, error)
	// AllowSessions admits a listing of the user userID's sessions
	// against that user's limit, reserving the cost of the largest
	// listing, so that listings sent at once cannot all pass before any
	// has paid.
	AllowSessions(ctx context.Context, userID string) (session.RateDecision, error)
	// ChargeListing settles that reservation at the cost of a listing
	// that returned listed sessions, which grows with their number.
	ChargeListing(ctx context.Context, userID string, listed int) error

	// RefundLogin, RefundRegister and RefundSessions give back, in the
	// background, what AllowLogin, AllowRegister and AllowSessions
	// counted for a request they allowed that was then answered 503
	// because the store was unavailable: such an answer changes nothing.
	RefundLogin(ctx context.Context, ip, username string)
	RefundRegister(ctx context.Context, ip string)
	RefundSessions(ctx context.Context, userID string)
}

// Deps is everything the HTTP server needs, passed explicitly.
type Deps struct {
	Logger    *slog.Logger
	Sessions  session.Store
	Users     session.UserStore
	Passwords PasswordHasher
	Limiter   RateLimiter
	// Ready reports whether the store takes writes. /readyz calls it on
	// every request, and anyone can call /readyz through nginx, so it
	// should answer from memory (the command passes the last outcome of a
	// background probe) rather than ask the store each time. The handler
	// still bounds ctx, to 300 ms.
	Ready func(ctx context.Context) error
	// Draining reports whether the replica has been told to shut down;
	// /readyz then answers 503.
	Draining func() bool
	Metrics  *metrics.Metrics
	// Gatherer serves /metrics.
	Gatherer       prometheus.Gatherer
	InstanceID     string
	CookieSecure   bool
	TrustedProxies []netip.Prefix
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// StoreBudget bounds the store calls of one request (of each phase
	// of a login or registration, whose password hash waits its own time
	// for a slot): the store's timeout bounds each call, this their sum,
	// so that a Redis answering every call just in time still makes a
	// request that needs several of them fail within one budget. No
	// bound when zero. GET /profile, one call and at most a touch, has
	// none: a timer per request on the hot path would cost more than the
	// bound gives there.
	StoreBudget time.Duration
}
