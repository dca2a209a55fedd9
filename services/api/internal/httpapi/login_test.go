package httpapi_test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"redis-session-app/services/api/internal/httpapi"
	"redis-session-app/services/api/internal/session"
)

func TestRegister(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		setup      func(h *harness)
		wantStatus int
		wantBody   string
		wantRetry  string
		wantHashes int
	}{
		{
			name:       "OK",
			body:       `{"username":"Alice","password":"correct horse"}`,
			wantStatus: http.StatusCreated,
			wantBody:   `{"username":"Alice"}`,
			wantHashes: 1,
		},
		{
			name:       "ErrUsernameTaken",
			body:       `{"username":"alice","password":"correct horse"}`,
			setup:      func(h *harness) { h.addUser(t, "ALICE", "whatever1") },
			wantStatus: http.StatusConflict,
			wantBody:   `{"error":"Username taken"}`,
			wantHashes: 1,
		},
		{
			name:       "ErrUsernameShort",
			body:       `{"username":"al","password":"correct horse"}`,
			wantStatus: http.StatusBadRequest,
			wantBody:   `{"error":"username must be 3 to 64 characters of A-Z a-z 0-9 . _ -"}`,
		},
		{
			name:       "ErrUsernameNotTrimmed",
			body:       `{"username":" alice","password":"correct horse"}`,
			wantStatus: http.StatusBadRequest,
			wantBody:   `{"error":"username must be 3 to 64 characters of A-Z a-z 0-9 . _ -"}`,
		},
		{
			name:       "ErrPasswordShort",
			body:       `{"username":"alice","password":"short"}`,
			wantStatus: http.StatusBadRequest,
			wantBody:   `{"error":"password must be 8 to 128 characters of valid UTF-8"}`,
		},
		{
			name:       "ErrPasswordLong",
			body:       `{"username":"alice","password":"` + strings.Repeat("é", 129) + `"}`,
			wantStatus: http.StatusBadRequest,
			wantBody:   `{"error":"password must be 8 to 128 characters of valid UTF-8"}`,
		},
		{
			name:       "PasswordOf128MultibyteCharacters",
			body:       `{"username":"alice","password":"` + strings.Repeat("é", 128) + `"}`,
			wantStatus: http.StatusCreated,
			wantBody:   `{"username":"alice"}`,
			wantHashes: 1,
		},
		{
			name: "ErrRateLimited",
			body: `{"username":"alice","password":"correct horse"}`,
			setup: func(h *harness) {
				h.limiter.decision = &session.RateDecision{RetryAfter: 2100 * time.Millisecond, Limit: "ip"}
			},
			wantStatus: http.StatusTooManyRequests,
			wantBody:   `{"error":"Too many requests"}`,
			wantRetry:  "3",
		},
		{
			name: "ErrRateLimitedRetryAtLeastOneSecond",
			body: `{"username":"alice","password":"correct horse"}`,
			setup: func(h *harness) {
				h.limiter.decision = &session.RateDecision{RetryAfter: 0, Limit: "ip"}
			},
			wantStatus: http.StatusTooManyRequests,
			wantBody:   `{"error":"Too many requests"}`,
			wantRetry:  "1",
		},
		{
			name: "ErrRateLimitedEvenWhenInvalid",
			body: `{"username":"x","password":"y"}`,
			setup: func(h *harness) {
				h.limiter.decision = &session.RateDecision{RetryAfter: time.Second, Limit: "ip"}
			},
			wantStatus: http.StatusTooManyRequests,
			wantBody:   `{"error":"Too many requests"}`,
			wantRetry:  "1",
		},
		{
			name:       "ErrLimiterUnavailable",
			body:       `{"username":"alice","password":"correct horse"}`,
			setup:      func(h *harness) { h.limiter.err = errRedisDown },
			wantStatus: http.StatusServiceUnavailable,
			wantBody:   `{"error":"Session store unavailable"}`,
			wantRetry:  "1",
		},
		{
			name:       "ErrUsersUnavailable",
			body:       `{"username":"alice","password":"correct horse"}`,
			setup:      func(h *harness) { h.users.err = errRedisDown },
			wantStatus: http.StatusServiceUnavailable,
			wantBody:   `{"error":"Session store unavailable"}`,
			wantRetry:  "1",
			wantHashes: 1,
		},
		{
			name:       "ErrBusy",
			body:       `{"username":"alice","password":"correct horse"}`,
			setup:      func(h *harness) { h.hasher.err = session.ErrBusy },
			wantStatus: http.StatusServiceUnavailable,
			wantBody:   `{"error":"Server busy"}`,
			wantRetry:  "1",
			wantHashes: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.setup != nil {
				tc.setup(h)
			}
			rec := h.do(newRequest(http.MethodPost, "/auth/register", tc.body))
			checkResponse(t, rec, tc.wantStatus, tc.wantBody)
			checkHeader(t, rec, "Retry-After", tc.wantRetry)
			if got := h.hasher.hashed; got != tc.wantHashes {
				t.Errorf("hashes: got %v, want %v", got, tc.wantHashes)
			}
			if got, want := h.limiter.attempts, []string{"register|192.0.2.10"}; !slices.Equal(got, want) {
				t.Errorf("limiter: got %q, want %q", got, want)
			}
		})
	}
}

func TestRegisterStoresHashNotID(t *testing.T) {
	h := newHarness(t)
	rec := h.do(newRequest(http.MethodPost, "/auth/register", `{"username":"Bob.B-1_","password":"pässwörd long"}`))
	checkResponse(t, rec, http.StatusCreated, `{"username":"Bob.B-1_"}`)
	u, err := h.users.UserByName(t.Context(), "bob.b-1_")
	if err != nil {
		t.Fatalf("user not stored: %v", err)
	}
	if got, want := u.PasswordHash, "hash:pässwörd long"; got != want {
		t.Errorf("hash: got %q, want %q", got, want)
	}
	// The id is the store's to make, in the shape its keys need.
	if len(h.users.created) != 1 || h.users.created[0].ID != "" {
		t.Errorf("created: got %+v, want one user with no id", h.users.created)
	}
	if got, want := u.Username, "Bob.B-1_"; got != want {
		t.Errorf("username: got %q, want %q", got, want)
	}
}

func TestLogin(t *testing.T) {
	const pw = "correct horse"
	tests := []struct {
		name         string
		body         string
		setup        func(h *harness)
		wantStatus   int
		wantBody     string // empty for a success, checked separately
		wantRetry    string
		wantAttempt  string
		wantVerified []string
		wantResult   string
	}{
		{
			name:         "OK",
			body:         `{"username":"alice","password":"correct horse"}`,
			wantStatus:   http.StatusOK,
			wantAttempt:  "login|192.0.2.10|alice",
			wantVerified: []string{"hash:" + pw},
			wantResult:   "success",
		},
		{
			name:         "OKOtherCase",
			body:         `{"username":"ALICE","password":"correct horse"}`,
			wantStatus:   http.StatusOK,
			wantAttempt:  "login|192.0.2.10|alice",
			wantVerified: []string{"hash:" + pw},
			wantResult:   "success",
		},
		{
			name:         "ErrWrongPassword",
			body:         `{"username":"alice","password":"wrong horse"}`,
			wantStatus:   http.StatusUnauthorized,
			wantBody:     `{"error":"Invalid credentials"}`,
			wantAttempt:  "login|192.0.2.10|alice",
			wantVerified: []string{"hash:" + pw},
			wantResult:   "invalid_credentials",
		},
		{
			name:         "ErrUnknownUserCostsAVerify",
			body:         `{"username":"mallory","password":"correct horse"}`,
			wantStatus:   http.StatusUnauthorized,
			wantBody:     `{"error":"Invalid credentials"}`,
			wantAttempt:  "login|192.0.2.10|mallory",
			wantVerified: []string{""},
			wantResult:   "invalid_credentials",
		},
		{
			name:        "ErrBadUsernameShapeCountsAgainstIPOnly",
			body:        `{"username":"a b","password":"correct horse"}`,
			wantStatus:  http.StatusUnauthorized,
			wantBody:    `{"error":"Invalid credentials"}`,
			wantAttempt: "login|192.0.2.10|",
			wantResult:  "invalid_credentials",
		},
		{
			name:        "ErrBadPasswordShape",
			body:        `{"username":"alice","password":"short"}`,
			wantStatus:  http.StatusUnauthorized,
			wantBody:    `{"error":"Invalid credentials"}`,
			wantAttempt: "login|192.0.2.10|alice",
			wantResult:  "invalid_credentials",
		},
		{
			name: "ErrRateLimitedUser",
			body: `{"username":"alice","password":"correct horse"}`,
			setup: func(h *harness) {
				h.limiter.decision = &session.RateDecision{RetryAfter: 5500 * time.Millisecond, Limit: "user"}
			},
			wantStatus:  http.StatusTooManyRequests,
			wantBody:    `{"error":"Too many requests"}`,
			wantRetry:   "6",
			wantAttempt: "login|192.0.2.10|alice",
			wantResult:  "rate_limited",
		},
		{
			name:        "ErrLimiterUnavailable",
			body:        `{"username":"alice","password":"correct horse"}`,
			setup:       func(h *harness) { h.limiter.err = errRedisDown },
			wantStatus:  http.StatusServiceUnavailable,
			wantBody:    `{"error":"Session store unavailable"}`,
			wantRetry:   "1",
			wantAttempt: "login|192.0.2.10|alice",
			wantResult:  "unavailable",
		},
		{
			name:        "ErrUsersUnavailable",
			body:        `{"username":"alice","password":"correct horse"}`,
			setup:       func(h *harness) { h.users.err = errRedisDown },
			wantStatus:  http.StatusServiceUnavailable,
			wantBody:    `{"error":"Session store unavailable"}`,
			wantRetry:   "1",
			wantAttempt: "login|192.0.2.10|alice",
			wantResult:  "unavailable",
		},
		{
			name:         "ErrSessionsUnavailable",
			body:         `{"username":"alice","password":"correct horse"}`,
			setup:        func(h *harness) { h.store.err = errRedisDown },
			wantStatus:   http.StatusServiceUnavailable,
			wantBody:     `{"error":"Session store unavailable"}`,
			wantRetry:    "1",
			wantAttempt:  "login|192.0.2.10|alice",
			wantVerified: []string{"hash:" + pw},
			wantResult:   "unavailable",
		},
		{
			name:         "ErrBusy",
			body:         `{"username":"alice","password":"correct horse"}`,
			setup:        func(h *harness) { h.hasher.err = session.ErrBusy },
			wantStatus:   http.StatusServiceUnavailable,
			wantBody:     `{"error":"Server busy"}`,
			wantRetry:    "1",
			wantAttempt:  "login|192.0.2.10|alice",
			wantVerified: []string{"hash:" + pw},
			wantResult:   "busy",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.addUser(t, "alice", pw)
			if tc.setup != nil {
				tc.setup(h)
			}
			req := newRequest(http.MethodPost, "/auth/login", tc.body)
			req.Header.Set("User-Agent", "test-agent/1.0")
			rec := h.do(req)
			checkResponse(t, rec, tc.wantStatus, tc.wantBody)
			checkHeader(t, rec, "Retry-After", tc.wantRetry)
			if got, want := h.limiter.attempts, []string{tc.wantAttempt}; !slices.Equal(got, want) {
				t.Errorf("limiter: got %q, want %q", got, want)
			}
			if got := h.hasher.verified; !slices.Equal(got, tc.wantVerified) {
				t.Errorf("verified: got %q, want %q", got, tc.wantVerified)
			}
			for _, r := range []string{"success", "invalid_credentials", "rate_limited", "busy", "unavailable"} {
				want := 0.0
				if r == tc.wantResult {
					want = 1
				}
				if got := testutil.ToFloat64(h.metrics.Logins.WithLabelValues(r)); got != want {
					t.Errorf("api_logins_total{result=%q}: got %v, want %v", r, got, want)
				}
			}
			if tc.wantStatus != http.StatusOK && len(rec.Result().Cookies()) > 0 {
				t.Errorf("got cookies %q on a failed login, want none", rec.Header().Values("Set-Cookie"))
			}
		})
	}
}

func TestLoginSuccess(t *testing.T) {
	h := newHarness(t)
	u := h.addUser(t, "Alice", "correct horse")
	req := newRequest(http.MethodPost, "/auth/login", `{"username":"alice","password":"correct horse"}`)
	req.Header.Set("User-Agent", "test-agent/1.0")
	rec := h.do(req)
	checkResponse(t, rec, http.StatusOK, "")

	var body struct {
		Message   string `json:"message"`
		SessionID string `json:"sessionId"`
		ExpiresAt string `json:"expiresAt"`
	}
	decodeBody(t, rec, &body)
	if got, want := body.Message, "Logged in"; got != want {
		t.Errorf("message: got %q, want %q", got, want)
	}
	if !session.ValidToken(body.SessionID) {
		t.Errorf("sessionId: got %q, want a token", body.SessionID)
	}
	// The fake store's idle expiry is an hour after now.
	if got, want := body.ExpiresAt, "2026-01-02T16:04:05Z"; got != want {
		t.Errorf("expiresAt: got %q, want %q", got, want)
	}

	if got, want := rec.Header().Get("Set-Cookie"),
		"sid="+body.SessionID+"; Path=/; Max-Age=86400; HttpOnly; Secure; SameSite=Lax"; got != want {
		t.Errorf("Set-Cookie: got %q, want %q", got, want)
	}

	s, err := h.store.Lookup(t.Context(), body.SessionID)
	if err != nil {
		t.Fatalf("session not stored: %v", err)
	}
	want := session.Session{UserID: u.ID, Username: "Alice", UserAgent: "test-agent/1.0", IP: "192.0.2.10"}
	got := session.Session{UserID: s.UserID, Username: s.Username, UserAgent: s.UserAgent, IP: s.IP}
	if got != want {
		t.Errorf("session: got %+v, want %+v", got, want)
	}
	if got := testutil.ToFloat64(h.metrics.SessionsCreated); got != 1 {
		t.Errorf("api_sessions_created_total: got %v, want 1", got)
	}
}

func TestLoginCookieNotSecure(t *testing.T) {
	h := newHarness(t, func(d *httpapi.Deps) { d.CookieSecure = false })
	h.addUser(t, "alice", "correct horse")
	h.now = h.now.Add(0)
	rec := h.do(newRequest(http.MethodPost, "/auth/login", `{"username":"alice","password":"correct horse"}`))
	checkResponse(t, rec, http.StatusOK, "")
	c := rec.Header().Get("Set-Cookie")
	if strings.Contains(c, "Secure") {
		t.Errorf("Set-Cookie: got %q, want no Secure", c)
	}
	for _, attr := range []string{"Path=/", "Max-Age=86400", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(c, attr) {
			t.Errorf("Set-Cookie: got %q, want %s", c, attr)
		}
	}
}

func TestLoginCappedSessionsCounted(t *testing.T) {
	h := newHarness(t)
	h.addUser(t, "alice", "correct horse")
	h.store.capped = 2
	rec := h.do(newRequest(http.MethodPost, "/auth/login", `{"username":"alice","password":"correct horse"}`))
	checkResponse(t, rec, http.StatusOK, "")
	if got := testutil.ToFloat64(h.metrics.SessionsRevoked.WithLabelValues("cap")); got != 2 {
		t.Errorf(`api_sessions_revoked_total{reason="cap"}: got %v, want 2`, got)
	}
}

func TestLoginUserAgentBounded(t *testing.T) {
	h := newHarness(t)
	h.addUser(t, "alice", "correct horse")
	req := newRequest(http.MethodPost, "/auth/login", `{"username":"alice","password":"correct horse"}`)
	req.Header.Set("User-Agent", strings.Repeat("é", 1000))
	rec := h.do(req)
	checkResponse(t, rec, http.StatusOK, "")
	var body struct {
		SessionID string `json:"sessionId"`
	}
	decodeBody(t, rec, &body)
	s, err := h.store.Lookup(t.Context(), body.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(s.UserAgent); got > 512 || got < 500 {
		t.Errorf("user agent length: got %v, want at most 512 and near it", got)
	}
	if got, want := s.UserAgent, strings.Repeat("é", 256); got != want {
		t.Errorf("user agent: got %q, want %q (cut on a character boundary)", got, want)
	}
}

func TestRateLimitRejectionsCounted(t *testing.T) {
	tests := []struct {
		name  string
		path  string
		limit string
	}{
		{"LoginUser", "/auth/login", "user"},
		{"LoginIP", "/auth/login", "ip"},
		{"RegisterIP", "/auth/register", "ip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.limiter.decision = &session.RateDecision{RetryAfter: time.Second, Limit: tc.limit}
			rec := h.do(newRequest(http.MethodPost, tc.path, `{"username":"alice","password":"correct horse"}`))
			checkResponse(t, rec, http.StatusTooManyRequests, `{"error":"Too many requests"}`)
			if got := testutil.ToFloat64(h.metrics.RateLimitRejections.WithLabelValues(tc.limit)); got != 1 {
				t.Errorf("rejections{limit=%q}: got %v, want 1", tc.limit, got)
			}
			if got := h.hasher.hashed + len(h.hasher.verified); got != 0 {
				t.Errorf("hashes: got %v, want 0 before the limit", got)
			}
		})
	}
}

func TestUnexpectedErrorIs500AndLoggedOnce(t *testing.T) {
	h := newHarness(t)
	h.users.err = errors.New("corrupt record for user 42")
	rec := h.do(newRequest(http.MethodPost, "/auth/register", `{"username":"alice","password":"correct horse"}`))
	checkResponse(t, rec, http.StatusInternalServerError, `{"error":"Internal error"}`)
	if strings.Contains(rec.Body.String(), "corrupt") {
		t.Errorf("body %q leaks the error", rec.Body)
	}
	if got := strings.Count(h.logs.String(), "corrupt record for user 42"); got != 1 {
		t.Errorf("error logged %v times, want once; logs:\n%s", got, h.logs)
	}
}
