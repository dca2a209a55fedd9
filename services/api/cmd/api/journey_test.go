package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"redis-session-app/services/api/internal/redistest"
)

const pw = "correct horse battery"

// TestUserJourney walks one user through every route against a real Redis,
// over real HTTP.
func TestUserJourney(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	r := startReplica(t, baseEnv(rds.Addr(), "journey"))

	wantJSON(t, r.do(t, http.MethodPost, "/auth/register", credentials("Alice", pw)),
		http.StatusCreated, `{"username":"Alice"}`)
	wantJSON(t, r.do(t, http.MethodPost, "/auth/register", credentials("alice", "another password")),
		http.StatusConflict, `{"error":"Username taken"}`)

	// Login in another case than registered; the cookie carries the token.
	before := time.Now()
	res := r.do(t, http.MethodPost, "/auth/login", credentials("ALICE", pw), "User-Agent", "agent-one")
	wantStatus(t, res, http.StatusOK)
	login1 := decode[loginResponse](t, res)
	if login1.Message != "Logged in" {
		t.Errorf("message got %q, want %q", login1.Message, "Logged in")
	}
	tok1 := login1.SessionID
	checkToken(t, tok1)
	checkExpiresAt(t, login1.ExpiresAt, before.Add(time.Hour), time.Now().Add(time.Hour))
	checkSessionCookie(t, res, tok1, 24*time.Hour, false)

	t.Run("ProfileByEachCarrier", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			headers []string
		}{
			{"XSessionID", []string{"X-Session-Id", tok1}},
			{"Bearer", []string{"Authorization", "Bearer " + tok1}},
			{"BearerLowerCase", []string{"Authorization", "bearer " + tok1}},
			{"Cookie", []string{"Cookie", "sid=" + tok1}},
			{"EmptyHeaderFallsThrough", []string{"X-Session-Id", "", "Cookie", "sid=" + tok1}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantJSON(t, r.do(t, http.MethodGet, "/profile", "", tc.headers...), http.StatusOK,
					`{"username":"Alice","secretData":"This came from protected route"}`)
			})
		}
	})

	t.Run("ProfileRefused", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			headers []string
			want    string
		}{
			{"NoCarrier", nil, `{"error":"No session"}`},
			{"OtherScheme", []string{"Authorization", "Basic " + tok1}, `{"error":"No session"}`},
			{"UnknownToken", []string{"X-Session-Id", strings.Repeat("A", 43)}, `{"error":"Invalid session"}`},
			{"Malformed", []string{"X-Session-Id", "not a token!"}, `{"error":"Invalid session"}`},
			{"FirstCarrierDecides", []string{"X-Session-Id", strings.Repeat("B", 43), "Cookie", "sid=" + tok1}, `{"error":"Invalid session"}`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantJSON(t, r.do(t, http.MethodGet, "/profile", "", tc.headers...), http.StatusUnauthorized, tc.want)
			})
		}
	})

	t.Run("BadCredentials", func(t *testing.T) {
		for _, tc := range []struct {
			name, username, password string
		}{
			{"WrongPassword", "Alice", "wrong password"},
			{"UnknownUser", "nobody-here", pw},
			{"InvalidUsername", "a", pw},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantJSON(t, r.do(t, http.MethodPost, "/auth/login", credentials(tc.username, tc.password)),
					http.StatusUnauthorized, `{"error":"Invalid credentials"}`)
			})
		}
	})

	// A second session, from another agent: the list shows both, newest
	// first, with the caller's own marked current.
	tok2 := r.login(t, "Alice", pw, "User-Agent", "agent-two")
	list := r.sessions(t, tok2)
	if len(list) != 2 {
		t.Fatalf("sessions got %d, want 2: %+v", len(list), list)
	}
	for i, want := range []struct {
		agent   string
		current bool
	}{{"agent-two", true}, {"agent-one", false}} {
		s := list[i]
		if s.UserAgent != want.agent || s.Current != want.current || s.IP != "127.0.0.1" {
			t.Errorf("sessions[%d] got agent %q current %v ip %q, want %q %v %q",
				i, s.UserAgent, s.Current, s.IP, want.agent, want.current, "127.0.0.1")
		}
		if s.ID == "" || s.ID == tok1 || s.ID == tok2 {
			t.Errorf("sessions[%d] id got %q, want a handle that is not a token", i, s.ID)
		}
		for _, ts := range []string{s.CreatedAt, s.LastSeenAt, s.ExpiresAt} {
			if tm, err := time.Parse(time.RFC3339, ts); err != nil || !strings.HasSuffix(ts, "Z") || tm.IsZero() {
				t.Errorf("sessions[%d] time %q: want RFC 3339 UTC (err %v)", i, ts, err)
			}
		}
	}
	handle1, handle2 := list[1].ID, list[0].ID
	// A handle is never a token.
	wantJSON(t, r.profile(t, handle1), http.StatusUnauthorized, `{"error":"Invalid session"}`)

	t.Run("Refresh", func(t *testing.T) {
		res := r.do(t, http.MethodPost, "/auth/refresh", "", "Authorization", "Bearer "+tok2)
		wantStatus(t, res, http.StatusOK)
		ref := decode[loginResponse](t, res)
		if ref.Message != "Refreshed" || ref.SessionID == tok2 {
			t.Fatalf("refresh got %+v, want message Refreshed and a new token", ref)
		}
		checkToken(t, ref.SessionID)
		checkSessionCookie(t, res, ref.SessionID, 24*time.Hour, false)
		wantJSON(t, r.profile(t, tok2), http.StatusUnauthorized, `{"error":"Invalid session"}`)
		wantStatus(t, r.profile(t, ref.SessionID), http.StatusOK)
		cur := current(t, r.sessions(t, ref.SessionID))
		if cur.ID != handle2 || cur.CreatedAt != list[0].CreatedAt {
			t.Errorf("after refresh got id %q created %q, want %q %q", cur.ID, cur.CreatedAt, handle2, list[0].CreatedAt)
		}
		tok2 = ref.SessionID
	})

	t.Run("RevokeByHandle", func(t *testing.T) {
		res := r.do(t, http.MethodDelete, "/auth/sessions/"+handle1, "", "X-Session-Id", tok2)
		wantStatus(t, res, http.StatusNoContent)
		wantJSON(t, r.profile(t, tok1), http.StatusUnauthorized, `{"error":"Invalid session"}`)
		wantJSON(t, r.do(t, http.MethodDelete, "/auth/sessions/"+handle1, "", "X-Session-Id", tok2),
			http.StatusNotFound, `{"error":"Not found"}`)

		// Another user's handle is not found either, and stays alive.
		r.register(t, "bob", pw)
		bob := r.login(t, "bob", pw)
		bobHandle := current(t, r.sessions(t, bob)).ID
		wantJSON(t, r.do(t, http.MethodDelete, "/auth/sessions/"+bobHandle, "", "X-Session-Id", tok2),
			http.StatusNotFound, `{"error":"Not found"}`)
		wantStatus(t, r.profile(t, bob), http.StatusOK)
	})

	t.Run("LogoutAll", func(t *testing.T) {
		tok3 := r.login(t, "alice", pw)
		tok4 := r.login(t, "alice", pw)
		res := r.do(t, http.MethodPost, "/auth/logout-all", "", "Cookie", "sid="+tok3)
		wantJSON(t, res, http.StatusOK, `{"message":"Logged out","revoked":3}`)
		checkClearedCookie(t, res)
		for _, tok := range []string{tok2, tok3, tok4} {
			wantJSON(t, r.profile(t, tok), http.StatusUnauthorized, `{"error":"Invalid session"}`)
		}
	})

	t.Run("Logout", func(t *testing.T) {
		tok := r.login(t, "Alice", pw)
		res := r.do(t, http.MethodPost, "/auth/logout", "", "X-Session-Id", tok)
		wantJSON(t, res, http.StatusOK, `{"message":"Logged out"}`)
		checkClearedCookie(t, res)
		wantJSON(t, r.profile(t, tok), http.StatusUnauthorized, `{"error":"Invalid session"}`)
		wantJSON(t, r.do(t, http.MethodPost, "/auth/logout", "", "X-Session-Id", tok),
			http.StatusUnauthorized, `{"error":"Invalid session"}`)
	})
}

// checkToken checks the shape the contract gives tokens.
func checkToken(t testing.TB, tok string) {
	t.Helper()
	if len(tok) < 22 || len(tok) > 128 || strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
		t.Errorf("token %q: want 22 to 128 characters of A-Z a-z 0-9 _ -", tok)
	}
}

// checkExpiresAt checks that s is RFC 3339 UTC within [lo-1s, hi+1s]: the
// store may round to the second.
func checkExpiresAt(t testing.TB, s string, lo, hi time.Time) {
	t.Helper()
	got, err := time.Parse(time.RFC3339, s)
	if err != nil || !strings.HasSuffix(s, "Z") {
		t.Fatalf("expiresAt %q: want RFC 3339 UTC (err %v)", s, err)
	}
	if got.Before(lo.Add(-time.Second)) || got.After(hi.Add(time.Second)) {
		t.Errorf("expiresAt got %v, want between %v and %v", got, lo, hi)
	}
}

// sidCookie returns the sid cookie the response sets and its raw header.
func sidCookie(t testing.TB, res response) (*http.Cookie, string) {
	t.Helper()
	for _, line := range res.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("Set-Cookie %q: %v", line, err)
		}
		if c.Name == "sid" {
			return c, line
		}
	}
	t.Fatalf("no sid cookie in %q", res.header.Values("Set-Cookie"))
	return nil, ""
}

// checkSessionCookie checks every attribute of the cookie login and refresh
// set.
func checkSessionCookie(t testing.TB, res response, token string, lifetime time.Duration, secure bool) {
	t.Helper()
	c, raw := sidCookie(t, res)
	maxAge := int(lifetime / time.Second)
	if c.Value != token || c.Path != "/" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode ||
		c.Secure != secure || c.MaxAge < maxAge-2 || c.MaxAge > maxAge || c.Domain != "" {
		t.Errorf("cookie got %q, want sid=<token>; Path=/; Max-Age=%d; HttpOnly; SameSite=Lax; Secure=%v", raw, maxAge, secure)
	}
}

func checkClearedCookie(t testing.TB, res response) {
	t.Helper()
	c, raw := sidCookie(t, res)
	if c.Value != "" || c.MaxAge >= 0 || c.Path != "/" {
		t.Errorf("cookie got %q, want sid cleared with Max-Age=0 and Path=/", raw)
	}
}
