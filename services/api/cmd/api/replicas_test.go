package main

import (
	"net/http"
	"strconv"
	"testing"

	"redis-session-app/services/api/internal/redistest"
)

// TestReplicasShareSessions runs two replicas on one Redis: a session made
// on one is valid on the other and survives a restart of the first.
func TestReplicasShareSessions(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	a := startReplica(t, baseEnv(rds.Addr(), "replica-a"))
	b := startReplica(t, baseEnv(rds.Addr(), "replica-b"))

	a.register(t, "shared", pw)
	tok := a.login(t, "shared", pw)
	wantJSON(t, b.profile(t, tok), http.StatusOK,
		`{"username":"shared","secretData":"This came from protected route"}`)

	// A refresh on B invalidates the old token on A at once.
	res := b.do(t, http.MethodPost, "/auth/refresh", "", "X-Session-Id", tok)
	wantStatus(t, res, http.StatusOK)
	newTok := decode[loginResponse](t, res).SessionID
	wantJSON(t, a.profile(t, tok), http.StatusUnauthorized, `{"error":"Invalid session"}`)
	wantStatus(t, a.profile(t, newTok), http.StatusOK)

	if err := a.stop(); err != nil {
		t.Fatalf("stopping replica-a: got %v, want nil", err)
	}
	a2 := startReplica(t, baseEnv(rds.Addr(), "replica-a"))
	wantStatus(t, a2.profile(t, newTok), http.StatusOK)
}

// TestClientIP checks that X-Forwarded-For is believed only when the peer is
// a trusted proxy, through the ip the session list shows.
func TestClientIP(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	trusting := startReplica(t, baseEnv(rds.Addr(), "trusting").with("TRUSTED_PROXIES", "10.0.0.0/8,127.0.0.1"))
	plain := startReplica(t, baseEnv(rds.Addr(), "plain"))
	trusting.register(t, "ipuser", pw)

	for _, tc := range []struct {
		name    string
		r       *replica
		headers []string
		want    string
	}{
		{"NoHeader", trusting, nil, "127.0.0.1"},
		{"TrustedPeer", trusting, []string{"X-Forwarded-For", "203.0.113.7"}, "203.0.113.7"},
		{"RightmostUntrusted", trusting, []string{"X-Forwarded-For", "198.51.100.1, 203.0.113.7, 10.1.2.3"}, "203.0.113.7"},
		{"SeveralHeaders", trusting, []string{"X-Forwarded-For", "198.51.100.1", "X-Forwarded-For", "203.0.113.8"}, "203.0.113.8"},
		{"RealIPNeverBelieved", trusting, []string{"X-Real-IP", "203.0.113.9"}, "127.0.0.1"},
		{"ForwardedNeverBelieved", trusting, []string{"Forwarded", "for=203.0.113.9"}, "127.0.0.1"},
		{"UntrustedPeer", plain, []string{"X-Forwarded-For", "203.0.113.7"}, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.r.login(t, "ipuser", pw, tc.headers...)
			if got := current(t, tc.r.sessions(t, tok)).IP; got != tc.want {
				t.Errorf("ip got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestRateLimits checks the login and register limits and the limit of the
// listing of sessions, shared by replicas through Redis.
func TestRateLimits(t *testing.T) {
	t.Parallel()

	t.Run("PerUserAcrossReplicas", func(t *testing.T) {
		t.Parallel()
		a, b := replicaPair(t, "limit", "LOGIN_LIMIT_PER_USER", "3/m")
		a.register(t, "carol", pw)

		a.login(t, "carol", pw)
		wantStatus(t, b.do(t, http.MethodPost, "/auth/login", credentials("carol", "wrong password")), http.StatusUnauthorized)
		a.login(t, "carol", pw) // no reset on success: this is the third

		for _, tc := range []struct {
			name string
			r    *replica
			user string
		}{
			{"OtherReplica", b, "carol"},
			{"OtherCase", a, "CAROL"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res := tc.r.do(t, http.MethodPost, "/auth/login", credentials(tc.user, pw))
				wantJSON(t, res, http.StatusTooManyRequests, `{"error":"Too many requests"}`)
				checkRetryAfter(t, res, 1, 60)
			})
		}
		// Another user is not affected.
		a.register(t, "dave", pw)
		a.login(t, "dave", pw)
	})

	t.Run("PerIP", func(t *testing.T) {
		t.Parallel()
		rds := redistest.Start(t)
		r := startReplica(t, baseEnv(rds.Addr(), "limit-ip").with("LOGIN_LIMIT_PER_IP", "3/m"))
		r.register(t, "erin", pw)
		r.login(t, "erin", pw)
		wantStatus(t, r.do(t, http.MethodPost, "/auth/login", credentials("x", pw)), http.StatusUnauthorized)
		for _, tc := range []struct {
			name, path string
		}{
			{"Register", "/auth/register"},
			{"Login", "/auth/login"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res := r.do(t, http.MethodPost, tc.path, credentials("frank", pw))
				wantJSON(t, res, http.StatusTooManyRequests, `{"error":"Too many requests"}`)
				checkRetryAfter(t, res, 1, 60)
			})
		}
	})

	t.Run("SessionsPerUserAcrossReplicas", func(t *testing.T) {
		t.Parallel()
		// 1/m allows a burst of five minutes' worth: 5.
		a, b := replicaPair(t, "sessions", "SESSIONS_LIMIT_PER_USER", "1/m")
		a.register(t, "grace", pw)
		tok := a.login(t, "grace", pw)
		for i, r := range []*replica{a, b, a, b, a} {
			if res := r.do(t, http.MethodGet, "/auth/sessions", "", "X-Session-Id", tok); res.status != http.StatusOK {
				t.Fatalf("list %d: got %v, want 200", i+1, res.status)
			}
		}
		for _, r := range []*replica{b, a} {
			res := r.do(t, http.MethodGet, "/auth/sessions", "", "X-Session-Id", tok)
			wantJSON(t, res, http.StatusTooManyRequests, `{"error":"Too many requests"}`)
			checkRetryAfter(t, res, 1, 60)
		}
		// Revoking is never limited.
		wantStatus(t, b.do(t, http.MethodDelete, "/auth/sessions/AAAAAAAAAAAAAAAAAAAAAA", "", "X-Session-Id", tok), http.StatusNotFound)
		wantStatus(t, a.profile(t, tok), http.StatusOK)
		// Another user is not affected.
		a.register(t, "heidi", pw)
		a.sessions(t, a.login(t, "heidi", pw))
	})
}

// replicaPair starts two replicas, prefix-a and prefix-b, on a Redis of
// their own, with baseEnv changed by kv.
func replicaPair(t *testing.T, prefix string, kv ...string) (a, b *replica) {
	t.Helper()
	rds := redistest.Start(t)
	e := baseEnv(rds.Addr(), "").with(kv...)
	return startReplica(t, e.with("INSTANCE_ID", prefix+"-a")), startReplica(t, e.with("INSTANCE_ID", prefix+"-b"))
}

func checkRetryAfter(t testing.TB, res response, lo, hi int) {
	t.Helper()
	raw := res.header.Get("Retry-After")
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo || n > hi {
		t.Errorf("Retry-After got %q, want whole seconds in [%d, %d]", raw, lo, hi)
	}
}

// TestSessionCap checks SESSION_MAX_PER_USER: a login past the cap revokes
// the oldest session.
func TestSessionCap(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	r := startReplica(t, baseEnv(rds.Addr(), "cap").with("SESSION_MAX_PER_USER", "2"))
	r.register(t, "capped", pw)
	toks := []string{r.login(t, "capped", pw), r.login(t, "capped", pw), r.login(t, "capped", pw)}

	wantJSON(t, r.profile(t, toks[0]), http.StatusUnauthorized, `{"error":"Invalid session"}`)
	for _, tok := range toks[1:] {
		wantStatus(t, r.profile(t, tok), http.StatusOK)
	}
	if got := len(r.sessions(t, toks[2])); got != 2 {
		t.Errorf("sessions got %d, want 2", got)
	}
}
