package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/httpapi"
	"redis-session-app/services/api/internal/poll"
	"redis-session-app/services/api/internal/ratelimit"
	"redis-session-app/services/api/internal/redisstore"
	"redis-session-app/services/api/internal/redistest"
	"redis-session-app/services/api/internal/session"
)

// refusingHook fails, without sending them, the commands whose arguments
// mention a key with the prefix it holds (none when empty): as a Redis
// node holding those keys would that cannot be reached, while the others
// answer.
type refusingHook struct{ prefix atomic.Value }

// errRefused is what a node that cannot be reached answers.
var errRefused = &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}

func (h *refusingHook) refuses(cmd redis.Cmder) bool {
	p, _ := h.prefix.Load().(string)
	if p == "" {
		return false
	}
	for _, a := range cmd.Args() {
		if s, ok := a.(string); ok && strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func (h *refusingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *refusingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.refuses(cmd) {
			cmd.SetErr(errRefused)
			return errRefused
		}
		return next(ctx, cmd)
	}
}

func (h *refusingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if h.refuses(cmd) {
				for _, c := range cmds {
					c.SetErr(errRefused)
				}
				return errRefused
			}
		}
		return next(ctx, cmds)
	}
}

// TestOutageAfterLimitsChangesNothing: a request its limits allowed and
// that then fails on the store (its keys on a node that cannot be
// reached, the limits' keys on one that answers, as in a Redis Cluster)
// is answered 503, which changes nothing: what the limits counted for it
// is given back, so a client retrying through the outage is not refused
// afterwards for attempts that never happened.
func TestOutageAfterLimitsChangesNothing(t *testing.T) {
	srv := redistest.Start(t)
	hook := &refusingHook{}
	stores := redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr()}, Timeout: 200 * time.Millisecond})
	stores.AddHook(hook)
	t.Cleanup(func() { _ = stores.Close() })
	limits := redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr()}, Timeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = limits.Close() })
	h := newRedisHarnessOn(t, srv, func(d *httpapi.Deps) {
		d.Sessions = redisstore.NewSessions(stores, redisstore.SessionOptions{})
		d.Users = redisstore.NewUsers(stores)
		// Per hour, so that no limit recovers by itself while the
		// test waits for the refunds.
		d.Limiter = ratelimit.New(limits, ratelimit.Limits{
			LoginPerUser:    session.Limit{Rate: 100, Period: time.Hour},
			LoginPerIP:      session.Limit{Rate: 100, Period: time.Hour},
			SessionsPerUser: redisSessionsLimit,
		})
	})
	alice := loginAs(t, h, "alice")
	spendSessions(t, h, alice, 1) // every limit counted once
	admin := srv.Client(t)
	ctx := context.Background()
	uid := admin.HGet(ctx, "user:alice", "id").Val()

	for _, tc := range []struct {
		name    string
		refuse  string // the prefix of the keys the store cannot reach
		request func() *http.Request
		keys    []string
	}{
		{"LoginSessionNotCreated", "s:{", func() *http.Request {
			return newRequest(http.MethodPost, "/auth/login", `{"username":"alice","password":"correct horse"}`)
		}, []string{"rate:rl:ip:192.0.2.10", "rate:rl:user:alice"}},
		{"LoginUserNotRead", "user:", func() *http.Request {
			return newRequest(http.MethodPost, "/auth/login", `{"username":"alice","password":"correct horse"}`)
		}, []string{"rate:rl:ip:192.0.2.10", "rate:rl:user:alice"}},
		{"RegisterNotStored", "user:", func() *http.Request {
			return newRequest(http.MethodPost, "/auth/register", `{"username":"bob","password":"correct horse"}`)
		}, []string{"rate:rl:ip:192.0.2.10"}},
		{"ListingNotRead", "i:{", func() *http.Request {
			return authed(newRequest(http.MethodGet, "/auth/sessions", ""), alice)
		}, []string{"rate:rl:sessions:{" + uid + "}"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.Strings(t, tc.keys)
			for k, v := range before {
				if v == "" {
					t.Fatalf("%s: not counted before the request", k)
				}
			}
			hook.prefix.Store(tc.refuse)
			rec := h.do(tc.request())
			hook.prefix.Store("")
			checkResponse(t, rec, http.StatusServiceUnavailable, `{"error":"Session store unavailable"}`)
			// The refund runs in the background.
			poll.For(t, 5*time.Second, "the limits to be as before the request", func() bool {
				after := srv.Strings(t, tc.keys)
				for _, k := range tc.keys {
					if !redistest.SameFloat(before[k], after[k]) {
						return false
					}
				}
				return true
			})
		})
	}
}

// TestClientHungUp: a request whose client hung up while the replica
// waited for Redis is not the store's failure. It is counted and logged
// as nginx counts it, 499, not as a 503 (which would page whoever watches
// the error budget while Redis is fine), and a login's attempt stays
// counted: hanging up must not make hashed attempts free.
func TestClientHungUp(t *testing.T) {
	h, _ := newRedisHarness(t)
	alice := loginAs(t, h, "alice")
	for _, tc := range []struct {
		name  string
		route string
		req   *http.Request
	}{
		{"Profile", "/profile", authed(newRequest(http.MethodGet, "/profile", ""), alice)},
		{"Login", "/auth/login", newRequest(http.MethodPost, "/auth/login", `{"username":"alice","password":"correct horse"}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gone, cancel := context.WithCancel(context.Background())
			cancel()
			rec := h.do(tc.req.WithContext(gone))
			checkResponse(t, rec, statusClientClosed, `{"error":"Client closed request"}`)
			if got := testutil.ToFloat64(h.metrics.HTTPRequests.WithLabelValues(tc.route, tc.req.Method, "499")); got != 1 {
				t.Errorf(`requests{code="499"}: got %v, want 1`, got)
			}
			if got := testutil.ToFloat64(h.metrics.HTTPRequests.WithLabelValues(tc.route, tc.req.Method, "503")); got != 0 {
				t.Errorf(`requests{code="503"}: got %v, want 0`, got)
			}
		})
	}
	if got := testutil.ToFloat64(h.metrics.Logins.WithLabelValues("unavailable")); got != 0 {
		t.Errorf(`logins{result="unavailable"}: got %v, want 0`, got)
	}
}

// TestClientHungUpWaitingForAHash: a login whose client hung up while it
// waited for a hashing slot is a 499, not a busy replica's 503, and not
// counted as busy (an alert watches that count).
func TestClientHungUpWaitingForAHash(t *testing.T) {
	h := newHarness(t)
	h.hasher.err = fmt.Errorf("password: %w: %w", session.ErrBusy, context.Canceled)
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	req := newRequest(http.MethodPost, "/auth/login", `{"username":"alice","password":"correct horse"}`)
	checkResponse(t, h.do(req.WithContext(gone)), statusClientClosed, `{"error":"Client closed request"}`)
	for _, result := range []string{"busy", "unavailable"} {
		if got := testutil.ToFloat64(h.metrics.Logins.WithLabelValues(result)); got != 0 {
			t.Errorf(`logins{result=%q}: got %v, want 0`, result, got)
		}
	}
}

// statusClientClosed is nginx's 499.
const statusClientClosed = 499
