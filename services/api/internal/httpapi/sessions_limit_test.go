package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"redis-session-app/services/api/internal/httpapi"
	"redis-session-app/services/api/internal/ratelimit"
	"redis-session-app/services/api/internal/redisstore"
	"redis-session-app/services/api/internal/redistest"
	"redis-session-app/services/api/internal/session"
)

// managedRoutes are the routes with a budget per user: the listing alone.
// The other routes of authRoutes have none; revocations in particular
// (see limitSessions).
var managedRoutes = []struct{ method, path string }{
	{http.MethodGet, "/auth/sessions"},
}

// loginAs registers username (unless it exists) and logs it in.
func loginAs(t *testing.T, h *harness, username string) string {
	t.Helper()
	creds := `{"username":"` + username + `","password":"correct horse"}`
	h.do(newRequest(http.MethodPost, "/auth/register", creds))
	rec := h.do(newRequest(http.MethodPost, "/auth/login", creds))
	if rec.Code != http.StatusOK {
		t.Fatalf("login %s: got %v %s, want 200", username, rec.Code, rec.Body)
	}
	var body struct {
		SessionID string `json:"sessionId"`
	}
	decodeBody(t, rec, &body)
	return body.SessionID
}

// spendSessions uses up n requests of the budget of tok's user with
// listings, all answered.
func spendSessions(t *testing.T, h *harness, tok string, n int) {
	t.Helper()
	for i := range n {
		if rec := h.do(authed(newRequest(http.MethodGet, "/auth/sessions", ""), tok)); rec.Code != http.StatusOK {
			t.Fatalf("listing %d: got %v %s, want 200", i+1, rec.Code, rec.Body)
		}
	}
}

// wantTooManyRequests checks login's 429: the body, a Retry-After in whole
// seconds within [lo, hi], and neither a challenge nor a cookie.
func wantTooManyRequests(t *testing.T, rec *httptest.ResponseRecorder, lo, hi int) {
	t.Helper()
	res := rec.Result()
	ra, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || ra < lo || ra > hi {
		t.Errorf("Retry-After: got %q, want whole seconds in [%d, %d]", res.Header.Get("Retry-After"), lo, hi)
	}
	for _, name := range []string{"WWW-Authenticate", "Set-Cookie"} {
		if v := res.Header.Values(name); len(v) > 0 {
			t.Errorf("%s: got %q, want none on a 429", name, v)
		}
	}
}

func TestSessionsLimitWithRedis(t *testing.T) {
	h, _ := newRedisHarness(t)
	alice := loginAs(t, h, "alice")
	bob := loginAs(t, h, "bob")
	profile := func(tok, name string) {
		t.Helper()
		checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/profile", ""), tok)), http.StatusOK,
			`{"username":"`+name+`","secretData":"This came from protected route"}`)
	}

	// Past the budget, the listing is refused.
	spendSessions(t, h, alice, redisSessionsLimit.Burst)
	for _, r := range managedRoutes {
		t.Run("Refused"+r.method+r.path, func(t *testing.T) {
			rec := h.do(authed(newRequest(r.method, r.path, ""), alice))
			checkResponse(t, rec, http.StatusTooManyRequests, `{"error":"Too many requests"}`)
			// One an hour: the next one is up to an hour away.
			wantTooManyRequests(t, rec, 3500, 3600)
		})
	}
	if got := testutil.ToFloat64(h.metrics.RateLimitRejections.WithLabelValues(session.LimitSessions)); got != float64(len(managedRoutes)) {
		t.Errorf(`rejections{limit="sessions"}: got %v, want %v`, got, len(managedRoutes))
	}
	for _, l := range []string{session.LimitUser, session.LimitIP} {
		if got := testutil.ToFloat64(h.metrics.RateLimitRejections.WithLabelValues(l)); got != 0 {
			t.Errorf("rejections{limit=%q}: got %v, want 0", l, got)
		}
	}

	t.Run("RevocationsUnlimited", func(t *testing.T) {
		// The owner of a token a thief spends the budget with can still
		// revoke it: by id, and every session at once.
		thief := loginAs(t, h, "alice")
		checkResponse(t, h.do(authed(newRequest(http.MethodDelete, "/auth/sessions/abcdefghijk", ""), alice)), http.StatusNotFound, `{"error":"Not found"}`)
		checkResponse(t, h.do(authed(newRequest(http.MethodPost, "/auth/logout-all", ""), alice)), http.StatusOK, `{"message":"Logged out","revoked":2}`)
		checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/profile", ""), thief)), http.StatusUnauthorized, `{"error":"Invalid session"}`)
		alice = loginAs(t, h, "alice")
	})
	t.Run("OtherUserUnaffected", func(t *testing.T) {
		checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/auth/sessions", ""), bob)), http.StatusOK, "")
	})
	t.Run("OtherSessionOfTheUserRefused", func(t *testing.T) {
		// The budget is the user's, not the session's: a new login
		// does not bring a new one.
		again := loginAs(t, h, "alice")
		checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/auth/sessions", ""), again)), http.StatusTooManyRequests, `{"error":"Too many requests"}`)
	})
	t.Run("OtherRoutesUnlimited", func(t *testing.T) {
		for range 3 {
			profile(alice, "alice")
		}
		rec := h.do(authed(newRequest(http.MethodPost, "/auth/refresh", ""), alice))
		checkResponse(t, rec, http.StatusOK, "")
		checkResponse(t, h.do(authed(newRequest(http.MethodPost, "/auth/logout", ""), cookieOf(t, rec).Value)),
			http.StatusOK, `{"message":"Logged out"}`)
	})
}

// TestSessionsLimitWeighsSessions: a listing costs a unit per ten
// sessions it returns, so an account holding many sessions gets fewer
// listings of the same budget than one holding a few.
func TestSessionsLimitWeighsSessions(t *testing.T) {
	h, _ := newRedisHarness(t)
	var hoarder string
	for range 25 {
		hoarder = loginAs(t, h, "hoarder")
	}
	few := loginAs(t, h, "few")

	// 25 sessions cost 3 units: the burst of 20 pays for seven listings
	// (the seventh is charged past what is left), not 20.
	const listings = 7
	spendSessions(t, h, hoarder, listings)
	checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/auth/sessions", ""), hoarder)), http.StatusTooManyRequests, `{"error":"Too many requests"}`)
	// One session costs one unit: the whole burst.
	spendSessions(t, h, few, redisSessionsLimit.Burst)
	checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/auth/sessions", ""), few)), http.StatusTooManyRequests, `{"error":"Too many requests"}`)
}

// TestSessionsLimitBurstAtOnce: listings sent all at once by an account
// at the cap, through two replicas, get no more than the burst pays for
// when they come one by one. The burst of 100 units, as
// SESSIONS_LIMIT_PER_USER's default has, pays for 10 listings of 100
// sessions. Nothing recovers while the test runs (one unit an hour), and
// a listing admitted holds its whole cost from its admission, so exactly
// 10 are answered whatever the interleaving: no slack is needed.
func TestSessionsLimitBurstAtOnce(t *testing.T) {
	const (
		// The default cap of the store and of the limiter
		// (ratelimit.DefaultMaxListed).
		atCap  = 100
		atOnce = 100
		want   = 100 / (atCap / ratelimit.SessionsPerListingUnit)
	)
	srv := redistest.Start(t)
	// A timeout that a hundred requests at once under the race detector
	// cannot run out of: a 503 would leave the burst unmeasured.
	client := redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr()}, Timeout: 10 * time.Second})
	t.Cleanup(func() { _ = client.Close() })
	limits := func(d *httpapi.Deps) {
		d.Sessions = redisstore.NewSessions(client, redisstore.SessionOptions{})
		d.Users = redisstore.NewUsers(client)
		d.Limiter = ratelimit.New(client, ratelimit.Limits{
			// The set-up's logins must not be refused.
			LoginPerUser:    session.Limit{Rate: 1000, Period: time.Hour},
			LoginPerIP:      session.Limit{Rate: 1000, Period: time.Hour},
			SessionsPerUser: session.Limit{Rate: 1, Period: time.Hour, Burst: 100},
		})
	}
	replicas := []*harness{newRedisHarnessOn(t, srv, limits), newRedisHarnessOn(t, srv, limits)}
	var tok string
	for range atCap {
		tok = loginAs(t, replicas[0], "hoarder")
	}

	codes := make([]int, atOnce)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() {
			req := authed(newRequest(http.MethodGet, "/auth/sessions", ""), tok)
			<-start
			rec := replicas[i%len(replicas)].do(req)
			codes[i] = rec.Code
			if rec.Code == http.StatusOK && strings.Count(rec.Body.String(), `"id"`) != atCap {
				t.Errorf("listing %d: got %d sessions, want %d", i, strings.Count(rec.Body.String(), `"id"`), atCap)
			}
		})
	}
	close(start)
	wg.Wait()
	answered := 0
	for i, code := range codes {
		switch code {
		case http.StatusOK:
			answered++
		case http.StatusTooManyRequests:
		default:
			t.Errorf("listing %d: got %v, want 200 or 429", i, code)
		}
	}
	if answered != want {
		t.Errorf("%d listings at once at the cap: %d answered, want %d (the burst)", atOnce, answered, want)
	}
}

// TestSessionsLimitAfterAuthentication: a request without a live session
// is a 401 that spends nobody's budget, however many of them come.
func TestSessionsLimitAfterAuthentication(t *testing.T) {
	h, srv := newRedisHarness(t)
	revoked := loginAs(t, h, "alice")
	checkResponse(t, h.do(authed(newRequest(http.MethodPost, "/auth/logout", ""), revoked)), http.StatusOK, "")

	for range redisSessionsLimit.Burst + 1 {
		for _, r := range managedRoutes {
			checkResponse(t, h.do(newRequest(r.method, r.path, "")), http.StatusUnauthorized, `{"error":"No session"}`)
			for _, tok := range []string{"short", strings.Repeat("B", 43), revoked} {
				rec := h.do(authed(newRequest(r.method, r.path, ""), tok))
				checkResponse(t, rec, http.StatusUnauthorized, `{"error":"Invalid session"}`)
				checkHeader(t, rec, "WWW-Authenticate", `Bearer error="invalid_token"`)
			}
		}
	}
	if keys, err := srv.Client(t).Keys(t.Context(), "rate:rl:sessions:*").Result(); err != nil || len(keys) != 0 {
		t.Errorf("sessions limit keys: got %q, %v, want none", keys, err)
	}
	// Alice's whole budget is left.
	alice := loginAs(t, h, "alice")
	spendSessions(t, h, alice, redisSessionsLimit.Burst)
	checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/auth/sessions", ""), alice)), http.StatusTooManyRequests, `{"error":"Too many requests"}`)
}

// TestSessionsLimitRoutes: the listing, and only it (revocations in
// particular never), asks the limiter, once, for the session's user, after authentication.
func TestSessionsLimitRoutes(t *testing.T) {
	for _, r := range authRoutes {
		t.Run(r.method+r.path, func(t *testing.T) {
			h, u, tok := newSignedIn(t)
			h.do(newRequest(r.method, r.path, ""))
			h.do(authed(newRequest(r.method, r.path, ""), strings.Repeat("B", 43)))
			if rec := h.do(authed(newRequest(r.method, r.path, ""), tok)); rec.Code >= 500 || rec.Code == http.StatusUnauthorized {
				t.Fatalf("got %v %s, want an answer of the route", rec.Code, rec.Body)
			}
			var want []string
			if slices.Contains(managedRoutes, r) {
				want = []string{"sessions|" + u.ID}
			}
			if got := h.limiter.attempts; !slices.Equal(got, want) {
				t.Errorf("limiter attempts: got %q, want %q", got, want)
			}
		})
	}
}

// TestSessionsLimitRefusedOrUnavailable: a refusal is login's 429, and a
// limiter that cannot reach Redis the store's 503; either way the handler
// does not run, so the store sees nothing but the lookup.
func TestSessionsLimitRefusedOrUnavailable(t *testing.T) {
	for _, r := range managedRoutes {
		t.Run("Refused"+r.method+r.path, func(t *testing.T) {
			h, _, tok := newSignedIn(t)
			h.limiter.decision = &session.RateDecision{RetryAfter: 1500 * time.Millisecond, Limit: session.LimitSessions}
			rec := h.do(authed(newRequest(r.method, r.path, ""), tok))
			checkResponse(t, rec, http.StatusTooManyRequests, `{"error":"Too many requests"}`)
			wantTooManyRequests(t, rec, 2, 2)
			if h.store.calls != 1 {
				t.Errorf("store calls: got %v, want 1 (the lookup)", h.store.calls)
			}
			if got := testutil.ToFloat64(h.metrics.RateLimitRejections.WithLabelValues(session.LimitSessions)); got != 1 {
				t.Errorf(`rejections{limit="sessions"}: got %v, want 1`, got)
			}
		})
		t.Run("Unavailable"+r.method+r.path, func(t *testing.T) {
			h, _, tok := newSignedIn(t)
			h.limiter.err = errRedisDown
			rec := h.do(authed(newRequest(r.method, r.path, ""), tok))
			checkResponse(t, rec, http.StatusServiceUnavailable, `{"error":"Session store unavailable"}`)
			checkHeader(t, rec, "Retry-After", "1")
			if h.store.calls != 1 {
				t.Errorf("store calls: got %v, want 1 (the lookup)", h.store.calls)
			}
			if logs := h.logs.String(); strings.Contains(logs, `"level":"ERROR"`) {
				t.Errorf("an outage is not a bug, want no error logged:\n%s", logs)
			}
		})
	}
}
