package main

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"redis-session-app/services/api/internal/poll"
	"redis-session-app/services/api/internal/redistest"
)

// TestExpiry checks both lifetimes with short timeouts. Only Redis's own
// expiry ends the sessions.
func TestExpiry(t *testing.T) {
	t.Parallel()

	t.Run("Idle", func(t *testing.T) {
		t.Parallel()
		rds := redistest.Start(t)
		r := startReplica(t, baseEnv(rds.Addr(), "idle").with("SESSION_IDLE_TIMEOUT", "1s"))
		r.register(t, "idler", pw)

		idle := r.login(t, "idler", pw)
		// The session was created before this instant, so its idle expiry
		// cannot come earlier than one timeout from here (give or take the
		// round trip).
		loggedIn := time.Now()
		idleID := current(t, r.sessions(t, idle)).ID
		watcher := r.login(t, "idler", pw)

		// Polling the list through the watcher keeps the watcher alive and
		// leaves the idle session untouched.
		poll.For(t, 5*time.Second, "the idle session to leave the list", func() bool {
			return !slices.ContainsFunc(r.sessions(t, watcher), func(s sessionView) bool { return s.ID == idleID })
		})
		gone := time.Since(loggedIn)
		if gone < 900*time.Millisecond {
			t.Errorf("idle session gone %v after login, want at least the 1s idle timeout", gone)
		}
		t.Logf("idle session gone %v after login", gone)
		wantJSON(t, r.profile(t, idle), http.StatusUnauthorized, `{"error":"Invalid session"}`)
		wantStatus(t, r.profile(t, watcher), http.StatusOK)
	})

	t.Run("SlidingUntilAbsolute", func(t *testing.T) {
		t.Parallel()
		const idle, absolute = time.Second, 3 * time.Second
		rds := redistest.Start(t)
		r := startReplica(t, baseEnv(rds.Addr(), "absolute").with(
			"SESSION_IDLE_TIMEOUT", idle.String(), "SESSION_MAX_LIFETIME", absolute.String()))
		r.register(t, "slider", pw)

		start := time.Now()
		res := r.do(t, http.MethodPost, "/auth/login", credentials("slider", pw))
		wantStatus(t, res, http.StatusOK)
		login := decode[loginResponse](t, res)
		checkSessionCookie(t, res, login.SessionID, absolute, false)
		checkExpiresAt(t, login.ExpiresAt, start.Add(idle), time.Now().Add(idle))

		// Used every 150ms, the session outlives its idle timeout many
		// times over, but not its absolute lifetime.
		tick := time.NewTicker(150 * time.Millisecond)
		defer tick.Stop()
		deadline := start.Add(absolute + 2*time.Second)
		for {
			res := r.profile(t, login.SessionID)
			elapsed := time.Since(start)
			if res.status != http.StatusOK {
				wantJSON(t, res, http.StatusUnauthorized, `{"error":"Invalid session"}`)
				if elapsed < absolute-100*time.Millisecond {
					t.Fatalf("session ended after %v, want it to slide until the %v absolute lifetime", elapsed, absolute)
				}
				t.Logf("session ended %v after login", elapsed)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("session still valid %v after login, want it to end at %v", elapsed, absolute)
			}
			<-tick.C
		}
	})
}
