package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"redis-session-app/services/api/internal/session"
)

// TestCacheControl: every response that carries a token or session data
// is no-store; the others leave caching alone.
func TestCacheControl(t *testing.T) {
	const creds = `{"username":"alice","password":"correct horse"}`
	tests := []struct {
		name         string
		method, path string
		body         string
		authed       bool
		wantStatus   int
		wantCache    string
	}{
		{"LoginOK", http.MethodPost, "/auth/login", creds, false, 200, "no-store"},
		{"RefreshOK", http.MethodPost, "/auth/refresh", "", true, 200, "no-store"},
		{"ProfileOK", http.MethodGet, "/profile", "", true, 200, "no-store"},
		{"SessionsOK", http.MethodGet, "/auth/sessions", "", true, 200, "no-store"},
		{"RegisterOK", http.MethodPost, "/auth/register", `{"username":"bob","password":"correct horse"}`, false, 201, ""},
		{"LogoutOK", http.MethodPost, "/auth/logout", "", true, 200, ""},
		{"LoginInvalidCredentials", http.MethodPost, "/auth/login", `{"username":"alice","password":"wrong horse"}`, false, 401, ""},
		{"ProfileNoSession", http.MethodGet, "/profile", "", false, 401, ""},
		{"Healthz", http.MethodGet, "/healthz", "", false, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			u := h.addUser(t, "alice", "correct horse")
			req := newRequest(tc.method, tc.path, tc.body)
			if tc.authed {
				authed(req, h.addSession(u, "ua").Token)
			}
			rec := h.do(req)
			checkResponse(t, rec, tc.wantStatus, "")
			checkHeader(t, rec, "Cache-Control", tc.wantCache)
		})
	}
}

// TestSessionsListNoStoreOnlyOnSuccess: a 503 of the list carries no
// session data, so it says nothing about caching.
func TestSessionsListNoStoreOnlyOnSuccess(t *testing.T) {
	h := newHarness(t)
	tok := h.addSession(h.addUser(t, "alice", "correct horse"), "ua").Token
	h.store.failAfter = 1
	h.store.err = errRedisDown
	rec := h.do(authed(newRequest(http.MethodGet, "/auth/sessions", ""), tok))
	checkResponse(t, rec, http.StatusServiceUnavailable, `{"error":"Session store unavailable"}`)
	checkHeader(t, rec, "Cache-Control", "")
}

// TestWWWAuthenticate: every 401 of a route that needs a session carries
// the RFC 6750 challenge, with error="invalid_token" when a token was
// presented, whichever carrier held it.
func TestWWWAuthenticate(t *testing.T) {
	unknown := strings.Repeat("B", 40)
	const (
		plain   = "Bearer"
		invalid = `Bearer error="invalid_token"`
	)
	carriers := []struct {
		name      string
		header    []string
		wantBody  string
		wantChall string
	}{
		{"NoCarrier", nil, `{"error":"No session"}`, plain},
		{"OtherSchemeIsAbsent", []string{"Authorization", "Basic dXNlcjpwYXNz"}, `{"error":"No session"}`, plain},
		{"UnknownXSessionID", []string{"X-Session-Id", unknown}, `{"error":"Invalid session"}`, invalid},
		{"UnknownBearer", []string{"Authorization", "Bearer " + unknown}, `{"error":"Invalid session"}`, invalid},
		{"UnknownCookie", []string{"Cookie", "sid=" + unknown}, `{"error":"Invalid session"}`, invalid},
		{"MalformedToken", []string{"X-Session-Id", "short"}, `{"error":"Invalid session"}`, invalid},
	}
	for _, r := range authRoutes {
		for _, cr := range carriers {
			t.Run(r.method+r.path+"/"+cr.name, func(t *testing.T) {
				h := newHarness(t)
				req := newRequest(r.method, r.path, "")
				if cr.header != nil {
					req.Header.Set(cr.header[0], cr.header[1])
				}
				rec := h.do(req)
				checkResponse(t, rec, http.StatusUnauthorized, cr.wantBody)
				checkHeader(t, rec, "WWW-Authenticate", cr.wantChall)
			})
		}
	}
}

// TestWWWAuthenticateWhenSessionEndsMidRequest: a session that ends
// between its lookup and the handler's own store call is an invalid token
// too.
func TestWWWAuthenticateWhenSessionEndsMidRequest(t *testing.T) {
	for _, path := range []string{"/auth/logout", "/auth/refresh"} {
		t.Run(path, func(t *testing.T) {
			h := newHarness(t)
			tok := h.addSession(h.addUser(t, "alice", "correct horse"), "ua").Token
			h.store.failAfter = 1
			h.store.err = session.ErrNotFound
			rec := h.do(authed(newRequest(http.MethodPost, path, ""), tok))
			checkResponse(t, rec, http.StatusUnauthorized, `{"error":"Invalid session"}`)
			checkHeader(t, rec, "WWW-Authenticate", `Bearer error="invalid_token"`)
		})
	}
}

// TestNoChallengeOutsideSessionRoutes: login's 401 is about credentials,
// not a token, and a 503 is no 401 at all.
func TestNoChallengeOutsideSessionRoutes(t *testing.T) {
	t.Run("LoginInvalidCredentials", func(t *testing.T) {
		h := newHarness(t)
		rec := h.do(newRequest(http.MethodPost, "/auth/login", `{"username":"nobody","password":"correct horse"}`))
		checkResponse(t, rec, http.StatusUnauthorized, `{"error":"Invalid credentials"}`)
		checkHeader(t, rec, "WWW-Authenticate", "")
	})
	t.Run("StoreUnavailable", func(t *testing.T) {
		h := newHarness(t)
		tok := h.addSession(h.addUser(t, "alice", "correct horse"), "ua").Token
		h.store.err = errRedisDown
		rec := h.do(authed(newRequest(http.MethodGet, "/profile", ""), tok))
		checkResponse(t, rec, http.StatusServiceUnavailable, `{"error":"Session store unavailable"}`)
		checkHeader(t, rec, "WWW-Authenticate", "")
	})
}

// TestCrossOriginRefused: a browser's cross-origin POST or DELETE is a 403
// before anything else is done (no body read, no limiter, no store); a
// same-origin one, a safe method, or a request without the browser's
// headers goes on.
func TestCrossOriginRefused(t *testing.T) {
	const refused = `{"error":"Cross-origin request refused"}`
	tests := []struct {
		name         string
		method, path string
		host         string
		header       []string
		wantStatus   int
		wantBody     string
	}{
		{"CrossSite", http.MethodPost, "/auth/login", "", []string{"Sec-Fetch-Site", "cross-site"}, 403, refused},
		{"SameSite", http.MethodPost, "/auth/login", "", []string{"Sec-Fetch-Site", "same-site"}, 403, refused},
		{"ForeignOrigin", http.MethodPost, "/auth/login", "", []string{"Origin", "https://evil.example"}, 403, refused},
		{"OriginOtherPort", http.MethodPost, "/auth/login", "127.0.0.1:8080", []string{"Origin", "http://127.0.0.1:9999"}, 403, refused},
		{"OriginWithoutHostPort", http.MethodPost, "/auth/login", "127.0.0.1", []string{"Origin", "http://127.0.0.1:8080"}, 403, refused},
		{"DeleteCrossSite", http.MethodDelete, "/auth/sessions/abc", "", []string{"Sec-Fetch-Site", "cross-site"}, 403, refused},
		{"LogoutCrossSite", http.MethodPost, "/auth/logout", "", []string{"Sec-Fetch-Site", "cross-site"}, 403, refused},
		{"UnknownPathCrossSite", http.MethodPost, "/nope", "", []string{"Sec-Fetch-Site", "cross-site"}, 403, refused},
		{"SameOrigin", http.MethodPost, "/auth/login", "", []string{"Sec-Fetch-Site", "same-origin"}, 401, `{"error":"Invalid credentials"}`},
		{"UserTyped", http.MethodPost, "/auth/login", "", []string{"Sec-Fetch-Site", "none"}, 401, `{"error":"Invalid credentials"}`},
		// What a browser sends through nginx, which passes the client's
		// Host with its port.
		{"SameOriginThroughNginx", http.MethodPost, "/auth/login", "127.0.0.1:8080", []string{"Origin", "http://127.0.0.1:8080"}, 401, `{"error":"Invalid credentials"}`},
		{"NoBrowserHeaders", http.MethodPost, "/auth/login", "", nil, 401, `{"error":"Invalid credentials"}`},
		{"SafeMethodCrossSite", http.MethodGet, "/profile", "", []string{"Sec-Fetch-Site", "cross-site"}, 401, `{"error":"No session"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			req := newRequest(tc.method, tc.path, `{"username":"nobody","password":"correct horse"}`)
			if tc.host != "" {
				req.Host = tc.host
			}
			if tc.header != nil {
				req.Header.Set(tc.header[0], tc.header[1])
			}
			req.Header.Set("X-Request-Id", "req-"+tc.name)
			rec := h.do(req)
			checkResponse(t, rec, tc.wantStatus, tc.wantBody)
			checkHeader(t, rec, "X-Request-Id", "req-"+tc.name)
			if tc.wantStatus != http.StatusForbidden {
				return
			}
			if got := len(h.limiter.attempts); got != 0 {
				t.Errorf("limiter attempts: got %v, want 0", got)
			}
			if got := h.store.callCount(); got != 0 {
				t.Errorf("store calls: got %v, want 0", got)
			}
		})
	}
}
