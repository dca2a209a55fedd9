package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"

	"redis-session-app/services/api/internal/httpapi"
	"redis-session-app/services/api/internal/password"
	"redis-session-app/services/api/internal/ratelimit"
	"redis-session-app/services/api/internal/redisstore"
	"redis-session-app/services/api/internal/redistest"
	"redis-session-app/services/api/internal/session"
)

// redisSessionsLimit is the budget of the Redis harness for listing
// sessions: a burst of 20, then one an hour, so that a
// test uses it up in a few requests and nothing recovers while it runs.
var redisSessionsLimit = session.Limit{Rate: 1, Period: time.Hour, Burst: 20}

// newRedisHarness is a server on the real stores, against a redis-server of
// its own. Hashing is cheap here: its cost is not what this test is about.
func newRedisHarness(t testing.TB, opts ...func(*httpapi.Deps)) (*harness, *redistest.Server) {
	t.Helper()
	srv := redistest.Start(t)
	return newRedisHarnessOn(t, srv, opts...), srv
}

// newRedisHarnessOn is newRedisHarness against srv.
func newRedisHarnessOn(t testing.TB, srv *redistest.Server, opts ...func(*httpapi.Deps)) *harness {
	t.Helper()
	client := redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr()}, Timeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = client.Close() })
	hasher, err := password.NewHasher(&argon2id.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}, 2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(d *httpapi.Deps) {
		d.Sessions = redisstore.NewSessions(client, redisstore.SessionOptions{})
		d.Users = redisstore.NewUsers(client)
		d.Passwords = hasher
		d.Limiter = ratelimit.New(client, ratelimit.Limits{
			LoginPerUser:    session.Limit{Rate: 100, Period: time.Minute},
			LoginPerIP:      session.Limit{Rate: 100, Period: time.Minute},
			SessionsPerUser: redisSessionsLimit,
		})
		d.Ready = func(ctx context.Context) error { return client.Ping(ctx).Err() }
		d.Now = time.Now
		for _, o := range opts {
			o(d)
		}
	})
	return h
}

func login(t *testing.T, h *harness, ua string) string {
	t.Helper()
	req := newRequest(http.MethodPost, "/auth/login", `{"username":"Alice","password":"correct horse"}`)
	req.Header.Set("User-Agent", ua)
	rec := h.do(req)
	if rec.Code != http.StatusOK {
		t.Fatalf("login: got %v %s, want 200", rec.Code, rec.Body)
	}
	var body struct {
		SessionID string `json:"sessionId"`
	}
	decodeBody(t, rec, &body)
	return body.SessionID
}

// nextMillisecond returns once the clock has moved on to the next
// millisecond, at most a millisecond from now.
func nextMillisecond() {
	for start := time.Now().UnixMilli(); time.Now().UnixMilli() == start; {
		runtime.Gosched()
	}
}

func TestJourneyWithRedis(t *testing.T) {
	h, _ := newRedisHarness(t)
	profile := `{"username":"Alice","secretData":"This came from protected route"}`

	checkResponse(t, h.do(newRequest(http.MethodGet, "/readyz", "")), http.StatusOK, `{"status":"ready"}`)
	checkResponse(t, h.do(newRequest(http.MethodPost, "/auth/register", `{"username":"Alice","password":"correct horse"}`)),
		http.StatusCreated, `{"username":"Alice"}`)
	checkResponse(t, h.do(newRequest(http.MethodPost, "/auth/register", `{"username":"alice","password":"other horse"}`)),
		http.StatusConflict, `{"error":"Username taken"}`)
	checkResponse(t, h.do(newRequest(http.MethodPost, "/auth/login", `{"username":"alice","password":"wrong horse"}`)),
		http.StatusUnauthorized, `{"error":"Invalid credentials"}`)

	tok := login(t, h, "first")
	// The list is newest first by login time in milliseconds: two
	// logins in the same millisecond would have no order.
	nextMillisecond()
	second := login(t, h, "second")

	bearer := newRequest(http.MethodGet, "/profile", "")
	bearer.Header.Set("Authorization", "Bearer "+tok)
	checkResponse(t, h.do(bearer), http.StatusOK, profile)
	cookie := newRequest(http.MethodGet, "/profile", "")
	cookie.Header.Set("Cookie", "sid="+tok)
	checkResponse(t, h.do(cookie), http.StatusOK, profile)

	rec := h.do(authed(newRequest(http.MethodGet, "/auth/sessions", ""), tok))
	var list struct {
		Sessions []struct {
			ID        string `json:"id"`
			UserAgent string `json:"userAgent"`
			IP        string `json:"ip"`
			Current   bool   `json:"current"`
		} `json:"sessions"`
	}
	decodeBody(t, rec, &list)
	if len(list.Sessions) != 2 || list.Sessions[0].UserAgent != "second" || !list.Sessions[1].Current || list.Sessions[1].IP != "192.0.2.10" {
		t.Fatalf("sessions: got %+v, want second then first (current), ip 192.0.2.10", list.Sessions)
	}

	rec = h.do(authed(newRequest(http.MethodPost, "/auth/refresh", ""), tok))
	checkResponse(t, rec, http.StatusOK, "")
	newTok := cookieOf(t, rec).Value
	checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/profile", ""), tok)), http.StatusUnauthorized, `{"error":"Invalid session"}`)
	checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/profile", ""), newTok)), http.StatusOK, profile)

	checkResponse(t, h.do(authed(newRequest(http.MethodDelete, "/auth/sessions/"+list.Sessions[0].ID, ""), newTok)), http.StatusNoContent, "")
	checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/profile", ""), second)), http.StatusUnauthorized, `{"error":"Invalid session"}`)
	checkResponse(t, h.do(authed(newRequest(http.MethodDelete, "/auth/sessions/"+list.Sessions[0].ID, ""), newTok)), http.StatusNotFound, `{"error":"Not found"}`)

	third := login(t, h, "third")
	checkResponse(t, h.do(authed(newRequest(http.MethodPost, "/auth/logout-all", ""), third)), http.StatusOK, `{"message":"Logged out","revoked":2}`)
	checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/profile", ""), newTok)), http.StatusUnauthorized, `{"error":"Invalid session"}`)

	last := login(t, h, "last")
	checkResponse(t, h.do(authed(newRequest(http.MethodPost, "/auth/logout", ""), last)), http.StatusOK, `{"message":"Logged out"}`)
	checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/profile", ""), last)), http.StatusUnauthorized, `{"error":"Invalid session"}`)
}

func TestRedisOutage(t *testing.T) {
	h, srv := newRedisHarness(t)
	checkResponse(t, h.do(newRequest(http.MethodPost, "/auth/register", `{"username":"Alice","password":"correct horse"}`)),
		http.StatusCreated, `{"username":"Alice"}`)
	tok := login(t, h, "ua")
	profile := `{"username":"Alice","secretData":"This came from protected route"}`

	// A hung Redis: answered within the timeout, and the session
	// survives it.
	srv.Pause()
	start := time.Now()
	rec := h.do(authed(newRequest(http.MethodGet, "/profile", ""), tok))
	checkResponse(t, rec, http.StatusServiceUnavailable, `{"error":"Session store unavailable"}`)
	if took := time.Since(start); took > time.Second {
		t.Errorf("profile during a hang took %v, want under a second", took)
	}
	srv.Resume()
	checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/profile", ""), tok)), http.StatusOK, profile)

	srv.Stop()
	for _, r := range authRoutes {
		start := time.Now()
		rec := h.do(authed(newRequest(r.method, r.path, ""), tok))
		checkResponse(t, rec, http.StatusServiceUnavailable, `{"error":"Session store unavailable"}`)
		checkHeader(t, rec, "Retry-After", "1")
		if took := time.Since(start); took > time.Second {
			t.Errorf("%s %s took %v, want under a second", r.method, r.path, took)
		}
	}
	for _, path := range []string{"/auth/login", "/auth/register"} {
		rec := h.do(newRequest(http.MethodPost, path, `{"username":"Alice","password":"correct horse"}`))
		checkResponse(t, rec, http.StatusServiceUnavailable, `{"error":"Session store unavailable"}`)
	}
	checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/profile", ""), "malformed")), http.StatusUnauthorized, `{"error":"Invalid session"}`)
	checkResponse(t, h.do(newRequest(http.MethodGet, "/readyz", "")), http.StatusServiceUnavailable, `{"error":"Not ready"}`)
	checkResponse(t, h.do(newRequest(http.MethodGet, "/healthz", "")), http.StatusOK, `{"status":"ok"}`)
	if logs := h.logs.String(); strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("an outage is not a bug, want no error logged:\n%s", logs)
	}

	// Redis comes back empty (nothing persisted): the old session is gone,
	// and the service works again without a restart.
	srv.Restart()
	checkResponse(t, h.do(newRequest(http.MethodGet, "/readyz", "")), http.StatusOK, `{"status":"ready"}`)
	checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/profile", ""), tok)), http.StatusUnauthorized, `{"error":"Invalid session"}`)
	checkResponse(t, h.do(newRequest(http.MethodPost, "/auth/register", `{"username":"Alice","password":"correct horse"}`)),
		http.StatusCreated, `{"username":"Alice"}`)
	login(t, h, "ua")
}

// TestListingInvalidUTF8: HTTP lets a User-Agent carry any byte from 0x80
// up. A login keeps it as valid UTF-8 (U+FFFD for each run of other
// bytes), and a User-Agent that holds such bytes anyway in the UA table,
// written there by hand, is listed with U+FFFD too: the answer is
// whole, valid JSON, never a 200 cut short.
func TestListingInvalidUTF8(t *testing.T) {
	h, srv := newRedisHarness(t)
	checkResponse(t, h.do(newRequest(http.MethodPost, "/auth/register", `{"username":"Alice","password":"correct horse"}`)),
		http.StatusCreated, `{"username":"Alice"}`)
	tok := login(t, h, "Moz\xffilla")
	login(t, h, "ua")
	rdb := srv.Client(t)
	ctx := context.Background()
	var stored bool
	for _, key := range rdb.Keys(ctx, "ua:*").Val() {
		for ref, ua := range rdb.HGetAll(ctx, key).Val() {
			if ua == "ua" {
				rdb.HSet(ctx, key, ref, "old\xfe\xfeagent")
				stored = true
			}
		}
	}
	if !stored {
		t.Fatal("no session with User-Agent \"ua\" in Redis")
	}

	rec := h.do(authed(newRequest(http.MethodGet, "/auth/sessions", ""), tok))
	if rec.Code != http.StatusOK || !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("GET /auth/sessions: got %d %q, want 200 with valid JSON", rec.Code, rec.Body)
	}
	var body struct {
		Sessions []struct {
			UserAgent string `json:"userAgent"`
			Current   bool   `json:"current"`
		} `json:"sessions"`
	}
	decodeBody(t, rec, &body)
	got := map[bool]string{}
	for _, s := range body.Sessions {
		got[s.Current] = s.UserAgent
	}
	// The listing replaces each byte, a login each run of them.
	if got[true] != "Moz\uFFFDilla" || got[false] != "old\uFFFD\uFFFDagent" || len(body.Sessions) != 2 {
		t.Errorf("listed User-Agents: got %v, want %q (current) and %q", got, "Moz\uFFFDilla", "old\uFFFD\uFFFDagent")
	}
}

// TestSessionsRevokingEachOther: two sessions of one user that revoke each
// other by id at the same moment. Redis runs the two revocations one after
// the other, so the second comes from a session that is already revoked:
// it must answer 401 and revoke nothing, as a request a moment later would.
// Exactly one of the two succeeds, and its session still works.
func TestSessionsRevokingEachOther(t *testing.T) {
	var store session.Store
	h, _ := newRedisHarness(t, func(d *httpapi.Deps) { store = d.Sessions })
	checkResponse(t, h.do(newRequest(http.MethodPost, "/auth/register", `{"username":"Alice","password":"correct horse"}`)),
		http.StatusCreated, `{"username":"Alice"}`)
	idOf := func(token string) string {
		s, err := store.Lookup(context.Background(), token)
		if err != nil {
			t.Fatalf("Lookup: %v", err)
		}
		return s.ID
	}
	for round := range 20 {
		a, b := login(t, h, "a"), login(t, h, "b")
		pairs := [2][2]string{{a, idOf(b)}, {b, idOf(a)}} // caller, target
		var codes [2]int
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, p := range pairs {
			wg.Go(func() {
				req := authed(newRequest(http.MethodDelete, "/auth/sessions/"+p[1], ""), p[0])
				<-start
				codes[i] = h.do(req).Code
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for i, code := range codes {
			switch code {
			case http.StatusNoContent:
				won = i
			case http.StatusUnauthorized:
			default:
				t.Fatalf("round %d: DELETE %d answered %d, want 204 or 401", round, i, code)
			}
		}
		if codes[0]+codes[1] != http.StatusNoContent+http.StatusUnauthorized {
			t.Fatalf("round %d: answers %v, want one 204 and one 401", round, codes)
		}
		checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/profile", ""), pairs[won][0])), http.StatusOK, "")
		checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/profile", ""), pairs[1-won][0])),
			http.StatusUnauthorized, `{"error":"Invalid session"}`)
	}
}
