package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/httpapi"
	"redis-session-app/services/api/internal/ratelimit"
	"redis-session-app/services/api/internal/redisstore"
	"redis-session-app/services/api/internal/redistest"
	"redis-session-app/services/api/internal/session"
)

// slowHook holds back every answer to a client, as a Redis (or a path to
// it) that answers each call just within the timeout does. It waits after
// the call, so that a script still reaches Redis within its deadline.
type slowHook struct{ delay time.Duration }

func (h slowHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h slowHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if err := next(ctx, cmd); err != nil {
			return err
		}
		if err := h.wait(ctx); err != nil {
			cmd.SetErr(err)
			return err
		}
		return nil
	}
}

func (h slowHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if err := next(ctx, cmds); err != nil {
			return err
		}
		if err := h.wait(ctx); err != nil {
			for _, cmd := range cmds {
				cmd.SetErr(err)
			}
			return err
		}
		return nil
	}
}

func (h slowHook) wait(ctx context.Context) error {
	t := time.NewTimer(h.delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestStoreBudget: a route that makes several store calls gives up when
// their sum passes the budget, with the contract's 503, although each call
// alone is answered within the timeout; without a budget the same route
// is answered after the sum.
func TestStoreBudget(t *testing.T) {
	const (
		delay  = 150 * time.Millisecond // each call, under the 200 ms timeout
		budget = 300 * time.Millisecond // two calls' worth
	)
	srv := redistest.Start(t)
	for _, tc := range []struct {
		name   string
		budget time.Duration
		want   int
	}{
		{"Budgeted", budget, http.StatusServiceUnavailable},
		{"Unbounded", 0, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.FlushAll(t)
			client := redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr()}, Timeout: 200 * time.Millisecond})
			t.Cleanup(func() { _ = client.Close() })
			h := newRedisHarnessOn(t, srv, func(d *httpapi.Deps) {
				d.Sessions = redisstore.NewSessions(client, redisstore.SessionOptions{})
				d.Limiter = ratelimit.New(client, ratelimit.Limits{SessionsPerUser: redisSessionsLimit,
					LoginPerUser: session.Limit{Rate: 100, Period: time.Minute}, LoginPerIP: session.Limit{Rate: 100, Period: time.Minute}})
				d.Users = redisstore.NewUsers(client)
				d.StoreBudget = tc.budget
			})
			token := loginAs(t, h, "alice")
			client.AddHook(slowHook{delay: delay})
			start := time.Now()
			rec := h.do(authed(newRequest(http.MethodGet, "/auth/sessions", ""), token))
			took := time.Since(start)
			if rec.Code != tc.want {
				t.Fatalf("GET /auth/sessions with every call %v late: %d %s, want %d", delay, rec.Code, rec.Body, tc.want)
			}
			if tc.budget > 0 {
				checkResponse(t, rec, http.StatusServiceUnavailable, `{"error":"Session store unavailable"}`)
				if took > tc.budget+delay {
					t.Errorf("answered after %v, want within the budget %v and one call", took, tc.budget)
				}
				if got := testutil.ToFloat64(h.metrics.HTTPRequests.WithLabelValues("/auth/sessions", "GET", "499")); got != 0 {
					t.Errorf(`requests{code="499"}: got %v, want 0: a budget that ran out is not a hang-up`, got)
				}
			}
		})
	}
}

// TestClientHungUpWhileRedisIsFrozen: a client that hangs up while the
// replica waits for a frozen Redis is a 499, although go-redis, blocked in
// its read, then reports its own timeout rather than the cancellation.
func TestClientHungUpWhileRedisIsFrozen(t *testing.T) {
	h, srv := newRedisHarness(t)
	alice := loginAs(t, h, "alice")
	srv.Pause()
	defer srv.Resume()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	rec := h.do(authed(newRequest(http.MethodGet, "/profile", ""), alice).WithContext(ctx))
	checkResponse(t, rec, statusClientClosed, `{"error":"Client closed request"}`)
	if got := testutil.ToFloat64(h.metrics.HTTPRequests.WithLabelValues("/profile", "GET", "503")); got != 0 {
		t.Errorf(`requests{code="503"}: got %v, want 0`, got)
	}
}

// TestCutByShutdownIsA503: a request whose handler was still running when
// the replica's shutdown cut it off (its context canceled with
// session.ErrShutdownCut) is logged and counted as a 503, even when the
// handler then answered 200: the connection was closed under it, and the
// client got nothing.
func TestCutByShutdownIsA503(t *testing.T) {
	h := newHarness(t)
	tok := h.addSession(h.addUser(t, "alice", "correct horse"), "ua").Token
	cut, cancel := context.WithCancelCause(context.Background())
	cancel(session.ErrShutdownCut)
	h.do(authed(newRequest(http.MethodGet, "/profile", ""), tok).WithContext(cut))
	if got := testutil.ToFloat64(h.metrics.HTTPRequests.WithLabelValues("/profile", "GET", "503")); got != 1 {
		t.Errorf(`requests{code="503"}: got %v, want 1`, got)
	}
	if logs := h.logs.String(); !strings.Contains(logs, `"status":503`) || !strings.Contains(logs, `"error":"cut off by the shutdown"`) {
		t.Errorf("want the request logged as a 503 cut off by the shutdown; logs:\n%s", logs)
	}
}
