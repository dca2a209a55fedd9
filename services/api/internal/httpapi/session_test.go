package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"redis-session-app/services/api/internal/httpapi"
	"redis-session-app/services/api/internal/session"
)

func TestProfile(t *testing.T) {
	h := newHarness(t)
	u := h.addUser(t, "Alice", "correct horse")
	iss := h.addSession(u, "ua")
	rec := h.do(authed(newRequest(http.MethodGet, "/profile", ""), iss.Token))
	checkResponse(t, rec, http.StatusOK, `{"username":"Alice","secretData":"This came from protected route"}`)
}

func TestProfileUnusualUsernameIsEscaped(t *testing.T) {
	// Register never writes such a name, but the store is not ours to
	// trust: the body must stay valid JSON.
	h := newHarness(t)
	iss := h.addSession(session.User{ID: "u1", Username: `a"b</script>`}, "ua")
	rec := h.do(authed(newRequest(http.MethodGet, "/profile", ""), iss.Token))
	checkResponse(t, rec, http.StatusOK, `{"username":"a\"b</script>","secretData":"This came from protected route"}`)
}

func TestTokenCarriers(t *testing.T) {
	h := newHarness(t)
	u := h.addUser(t, "alice", "correct horse")
	valid := h.addSession(u, "ua").Token
	unknown := strings.Repeat("A", 43)
	const malformed = "short"

	tests := []struct {
		name       string
		header     map[string]string
		cookie     string // raw Cookie header
		wantStatus int
		wantBody   string
	}{
		{"NoCarrier", nil, "", 401, `{"error":"No session"}`},
		{"XSessionID", map[string]string{"X-Session-Id": valid}, "", 200, ""},
		{"XSessionIDLowerCase", map[string]string{"x-session-id": valid}, "", 200, ""},
		{"Bearer", map[string]string{"Authorization": "Bearer " + valid}, "", 200, ""},
		{"BearerCaseInsensitive", map[string]string{"Authorization": "bEaReR " + valid}, "", 200, ""},
		{"Cookie", nil, "sid=" + valid, 200, ""},
		{"CookieAmongOthers", nil, "a=1; sid=" + valid + "; b=2", 200, ""},
		{"QuotedCookie", nil, `sid="` + valid + `"`, 200, ""},
		{"EmptyXSessionIDIsAbsent", map[string]string{"X-Session-Id": ""}, "sid=" + valid, 200, ""},
		{"BareBearerIsAbsent", map[string]string{"Authorization": "Bearer"}, "sid=" + valid, 200, ""},
		{"BearerSpaceIsAbsent", map[string]string{"Authorization": "Bearer "}, "sid=" + valid, 200, ""},
		// RFC 7235 allows only SP between the scheme and the token: a
		// tab makes "Bearer\t<token>" one word, a scheme other than
		// Bearer, so the carrier is absent.
		{"BearerTabIsAbsent", map[string]string{"Authorization": "Bearer\t" + valid}, "sid=" + valid, 200, ""},
		{"OnlyBearerTab", map[string]string{"Authorization": "Bearer\t" + valid}, "", 401, `{"error":"No session"}`},
		{"OtherSchemeIsAbsent", map[string]string{"Authorization": "Basic " + valid}, "sid=" + valid, 200, ""},
		{"EmptyCookieIsAbsent", nil, "sid=", 401, `{"error":"No session"}`},
		{"UnparsableCookieIsAbsent", nil, "sid=a b\x7f", 401, `{"error":"No session"}`},
		{"OnlyOtherScheme", map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, "", 401, `{"error":"No session"}`},
		{"XSessionIDWinsOverBearer", map[string]string{"X-Session-Id": valid, "Authorization": "Bearer " + unknown}, "", 200, ""},
		{"InvalidFirstCarrierDecides", map[string]string{"X-Session-Id": unknown, "Authorization": "Bearer " + valid}, "sid=" + valid, 401, `{"error":"Invalid session"}`},
		{"MalformedFirstCarrierDecides", map[string]string{"X-Session-Id": malformed}, "sid=" + valid, 401, `{"error":"Invalid session"}`},
		{"BearerWinsOverCookie", map[string]string{"Authorization": "Bearer " + unknown}, "sid=" + valid, 401, `{"error":"Invalid session"}`},
		{"UnknownToken", map[string]string{"X-Session-Id": unknown}, "", 401, `{"error":"Invalid session"}`},
		{"MalformedToken", map[string]string{"X-Session-Id": malformed}, "", 401, `{"error":"Invalid session"}`},
		{"TokenWithBadCharacter", map[string]string{"X-Session-Id": valid[:30] + "!"}, "", 401, `{"error":"Invalid session"}`},
		{"TokenTooLong", map[string]string{"X-Session-Id": strings.Repeat("a", 129)}, "", 401, `{"error":"Invalid session"}`},
		{"BearerWithTwoWords", map[string]string{"Authorization": "Bearer " + valid + " x"}, "", 401, `{"error":"Invalid session"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := newRequest(http.MethodGet, "/profile", "")
			for k, v := range tc.header {
				req.Header[http.CanonicalHeaderKey(k)] = []string{v}
			}
			if tc.cookie != "" {
				req.Header.Set("Cookie", tc.cookie)
			}
			rec := h.do(req)
			want := tc.wantBody
			if tc.wantStatus == 200 {
				want = `{"username":"alice","secretData":"This came from protected route"}`
			}
			checkResponse(t, rec, tc.wantStatus, want)
		})
	}
}

func TestMalformedTokenNeedsNoStore(t *testing.T) {
	h := newHarness(t)
	h.store.err = errRedisDown
	for _, tok := range []string{"short", strings.Repeat("a", 129), strings.Repeat("%", 30)} {
		rec := h.do(authed(newRequest(http.MethodGet, "/profile", ""), tok))
		checkResponse(t, rec, http.StatusUnauthorized, `{"error":"Invalid session"}`)
	}
	rec := h.do(newRequest(http.MethodGet, "/profile", ""))
	checkResponse(t, rec, http.StatusUnauthorized, `{"error":"No session"}`)
	if got := h.store.callCount(); got != 0 {
		t.Errorf("store calls: got %v, want 0", got)
	}
}

// authRoutes are the routes behind requireSession.
var authRoutes = []struct{ method, path string }{
	{http.MethodGet, "/profile"},
	{http.MethodPost, "/auth/logout"},
	{http.MethodPost, "/auth/logout-all"},
	{http.MethodGet, "/auth/sessions"},
	{http.MethodDelete, "/auth/sessions/abcdefghijk"},
	{http.MethodPost, "/auth/refresh"},
}

func TestAuthRoutesRefuseWithoutSession(t *testing.T) {
	h := newHarness(t)
	for _, r := range authRoutes {
		t.Run(r.method+r.path, func(t *testing.T) {
			checkResponse(t, h.do(newRequest(r.method, r.path, "")), http.StatusUnauthorized, `{"error":"No session"}`)
			unknown := strings.Repeat("B", 40)
			checkResponse(t, h.do(authed(newRequest(r.method, r.path, ""), unknown)), http.StatusUnauthorized, `{"error":"Invalid session"}`)
		})
	}
}

func TestAuthRoutesStoreUnavailable(t *testing.T) {
	for _, r := range authRoutes {
		t.Run(r.method+r.path, func(t *testing.T) {
			h, _, tok := newSignedIn(t)
			h.store.err = errRedisDown
			rec := h.do(authed(newRequest(r.method, r.path, ""), tok))
			checkResponse(t, rec, http.StatusServiceUnavailable, `{"error":"Session store unavailable"}`)
			checkHeader(t, rec, "Retry-After", "1")
			if strings.Contains(rec.Body.String(), "refused") {
				t.Errorf("body %q leaks the Redis error", rec.Body)
			}
		})
	}
}

func TestAuthRoutesStoreFailsAfterLookup(t *testing.T) {
	// Each handler's own store call maps the outage to 503 too.
	for _, r := range authRoutes[1:] {
		t.Run(r.method+r.path, func(t *testing.T) {
			h := newHarness(t)
			u := h.addUser(t, "alice", "correct horse")
			tok := h.addSession(u, "ua").Token
			h.store.failAfter = 1
			h.store.err = errRedisDown
			rec := h.do(authed(newRequest(r.method, r.path, ""), tok))
			checkResponse(t, rec, http.StatusServiceUnavailable, `{"error":"Session store unavailable"}`)
			checkHeader(t, rec, "Retry-After", "1")
		})
	}
}

func TestLogout(t *testing.T) {
	h := newHarness(t)
	u := h.addUser(t, "alice", "correct horse")
	tok := h.addSession(u, "ua").Token
	other := h.addSession(u, "ua2").Token

	rec := h.do(authed(newRequest(http.MethodPost, "/auth/logout", ""), tok))
	checkResponse(t, rec, http.StatusOK, `{"message":"Logged out"}`)
	if got, want := rec.Header().Get("Set-Cookie"), "sid=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"; got != want {
		t.Errorf("Set-Cookie: got %q, want %q", got, want)
	}
	checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/profile", ""), tok)), http.StatusUnauthorized, `{"error":"Invalid session"}`)
	checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/profile", ""), other)), http.StatusOK, "")
	if got := testutil.ToFloat64(h.metrics.SessionsRevoked.WithLabelValues("logout")); got != 1 {
		t.Errorf(`revoked{reason="logout"}: got %v, want 1`, got)
	}
}

func TestLogoutAll(t *testing.T) {
	h := newHarness(t)
	u := h.addUser(t, "alice", "correct horse")
	v := h.addUser(t, "bob", "correct horse")
	tok := h.addSession(u, "ua").Token
	h.addSession(u, "ua2")
	h.addSession(u, "ua3")
	bob := h.addSession(v, "ua").Token

	rec := h.do(authed(newRequest(http.MethodPost, "/auth/logout-all", ""), tok))
	checkResponse(t, rec, http.StatusOK, `{"message":"Logged out","revoked":3}`)
	if got, want := rec.Header().Get("Set-Cookie"), "sid=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"; got != want {
		t.Errorf("Set-Cookie: got %q, want %q", got, want)
	}
	checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/profile", ""), tok)), http.StatusUnauthorized, `{"error":"Invalid session"}`)
	checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/profile", ""), bob)), http.StatusOK, "")
	if got := testutil.ToFloat64(h.metrics.SessionsRevoked.WithLabelValues("logout_all")); got != 3 {
		t.Errorf(`revoked{reason="logout_all"}: got %v, want 3`, got)
	}
}

func TestListSessions(t *testing.T) {
	h := newHarness(t)
	u := h.addUser(t, "alice", "correct horse")
	first := h.addSession(u, "first-agent")
	h.now = h.now.Add(time.Minute)
	second := h.addSession(u, "second-agent")
	h.addSession(h.addUser(t, "bob", "correct horse"), "bob-agent")

	rec := h.do(authed(newRequest(http.MethodGet, "/auth/sessions", ""), first.Token))
	want := `{"sessions":[
		{"id":"` + second.Session.ID + `","createdAt":"2026-01-02T15:05:05Z","lastSeenAt":"2026-01-02T15:05:05Z",
		 "expiresAt":"2026-01-02T16:05:05Z","userAgent":"second-agent","ip":"192.0.2.1","current":false},
		{"id":"` + first.Session.ID + `","createdAt":"2026-01-02T15:04:05Z","lastSeenAt":"2026-01-02T15:04:05Z",
		 "expiresAt":"2026-01-02T16:04:05Z","userAgent":"first-agent","ip":"192.0.2.1","current":true}
	]}`
	checkResponse(t, rec, http.StatusOK, want)
	if body := rec.Body.String(); strings.Contains(body, first.Token) || strings.Contains(body, second.Token) {
		t.Errorf("body %q holds a token", body)
	}
}

func TestListSessionsEmptyIsArray(t *testing.T) {
	// A store may return a nil slice (the session just expired); the body
	// must still be [] and never null.
	h := newHarness(t)
	u := h.addUser(t, "alice", "correct horse")
	tok := h.addSession(u, "ua").Token
	h.store.listEmpty = true
	rec := h.do(authed(newRequest(http.MethodGet, "/auth/sessions", ""), tok))
	checkResponse(t, rec, http.StatusOK, `{"sessions":[]}`)
	if got, want := rec.Body.String(), `{"sessions":[]}`; got != want {
		t.Errorf("body: got %s, want %s", got, want)
	}
}

func TestRevokeSession(t *testing.T) {
	h := newHarness(t)
	u := h.addUser(t, "alice", "correct horse")
	tok := h.addSession(u, "ua").Token
	other := h.addSession(u, "ua2")
	bob := h.addSession(h.addUser(t, "bob", "correct horse"), "ua")

	t.Run("OK", func(t *testing.T) {
		rec := h.do(authed(newRequest(http.MethodDelete, "/auth/sessions/"+other.Session.ID, ""), tok))
		checkResponse(t, rec, http.StatusNoContent, "")
		if rec.Body.Len() != 0 {
			t.Errorf("body: got %q, want none", rec.Body)
		}
		checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/profile", ""), other.Token)), http.StatusUnauthorized, `{"error":"Invalid session"}`)
		if got := testutil.ToFloat64(h.metrics.SessionsRevoked.WithLabelValues("revoke")); got != 1 {
			t.Errorf(`revoked{reason="revoke"}: got %v, want 1`, got)
		}
	})
	t.Run("ErrNotFoundAlreadyRevoked", func(t *testing.T) {
		rec := h.do(authed(newRequest(http.MethodDelete, "/auth/sessions/"+other.Session.ID, ""), tok))
		checkResponse(t, rec, http.StatusNotFound, `{"error":"Not found"}`)
	})
	t.Run("ErrNotFoundSomeoneElses", func(t *testing.T) {
		rec := h.do(authed(newRequest(http.MethodDelete, "/auth/sessions/"+bob.Session.ID, ""), tok))
		checkResponse(t, rec, http.StatusNotFound, `{"error":"Not found"}`)
		checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/profile", ""), bob.Token)), http.StatusOK, "")
	})
	t.Run("ErrNotFoundOverlong", func(t *testing.T) {
		rec := h.do(authed(newRequest(http.MethodDelete, "/auth/sessions/"+strings.Repeat("x", 129), ""), tok))
		checkResponse(t, rec, http.StatusNotFound, `{"error":"Not found"}`)
	})
	t.Run("ErrNotFoundTokenIsNoHandle", func(t *testing.T) {
		rec := h.do(authed(newRequest(http.MethodDelete, "/auth/sessions/"+other.Token, ""), tok))
		checkResponse(t, rec, http.StatusNotFound, `{"error":"Not found"}`)
	})
}

func TestRefresh(t *testing.T) {
	h := newHarness(t)
	u := h.addUser(t, "alice", "correct horse")
	old := h.addSession(u, "ua")
	h.now = h.now.Add(10 * time.Minute)

	rec := h.do(authed(newRequest(http.MethodPost, "/auth/refresh", ""), old.Token))
	checkResponse(t, rec, http.StatusOK, "")
	var body struct {
		Message   string `json:"message"`
		SessionID string `json:"sessionId"`
		ExpiresAt string `json:"expiresAt"`
	}
	decodeBody(t, rec, &body)
	if got, want := body.Message, "Refreshed"; got != want {
		t.Errorf("message: got %q, want %q", got, want)
	}
	if body.SessionID == old.Token || !session.ValidToken(body.SessionID) {
		t.Errorf("sessionId: got %q, want a new token", body.SessionID)
	}
	if got, want := body.ExpiresAt, "2026-01-02T16:14:05Z"; got != want {
		t.Errorf("expiresAt: got %q, want %q", got, want)
	}
	// Ten minutes into a 24 h lifetime: the cookie lives 23 h 50 min.
	if got, want := rec.Header().Get("Set-Cookie"),
		"sid="+body.SessionID+"; Path=/; Max-Age=85800; HttpOnly; Secure; SameSite=Lax"; got != want {
		t.Errorf("Set-Cookie: got %q, want %q", got, want)
	}
	checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/profile", ""), old.Token)), http.StatusUnauthorized, `{"error":"Invalid session"}`)
	checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/profile", ""), body.SessionID)), http.StatusOK, "")
	if got := testutil.ToFloat64(h.metrics.SessionsRevoked.WithLabelValues("refresh")); got != 1 {
		t.Errorf(`revoked{reason="refresh"}: got %v, want 1`, got)
	}
}

// TestSessionCookieMaxAge: Max-Age is the time left until the absolute end
// rounded up to whole seconds, and at least 1 while the session lives.
func TestSessionCookieMaxAge(t *testing.T) {
	tests := []struct {
		name    string
		refresh bool          // refresh a session opened at the start, else log in
		elapsed time.Duration // since the session was opened
		lag     time.Duration // between the store's clock and the handler's
		want    int
	}{
		{"LoginAtOnce", false, 0, 0, 86400},
		{"LoginAfterStoreCall", false, 0, time.Millisecond, 86400},
		{"LoginSecondLater", false, 0, time.Second, 86399},
		{"RefreshWholeSeconds", true, 10 * time.Minute, 0, 85800},
		{"RefreshPartSecond", true, 10*time.Minute + time.Millisecond, 0, 85800},
		{"RefreshLastSecond", true, 24*time.Hour - 300*time.Millisecond, 0, 1},
		{"RefreshOneSecondLeft", true, 24*time.Hour - time.Second, 0, 1},
		{"RefreshJustOverOneSecondLeft", true, 24*time.Hour - time.Second - time.Nanosecond, 0, 2},
		{"RefreshAtTheEnd", true, 24 * time.Hour, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var lag time.Duration
			h := newHarness(t, func(d *httpapi.Deps) {
				storeNow := d.Now
				d.Now = func() time.Time { return storeNow().Add(lag) }
			})
			u := h.addUser(t, "alice", "correct horse")
			req := newRequest(http.MethodPost, "/auth/login", `{"username":"alice","password":"correct horse"}`)
			if tc.refresh {
				req = authed(newRequest(http.MethodPost, "/auth/refresh", ""), h.addSession(u, "ua").Token)
			}
			h.now = h.now.Add(tc.elapsed)
			lag = tc.lag
			rec := h.do(req)
			checkResponse(t, rec, http.StatusOK, "")
			if got := cookieOf(t, rec).MaxAge; got != tc.want {
				t.Errorf("Max-Age: got %v, want %v (Set-Cookie %q)", got, tc.want, rec.Header().Get("Set-Cookie"))
			}
		})
	}
}
