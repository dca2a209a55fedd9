package main

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"redis-session-app/services/api/internal/redistest"
)

// TestLateWritesChangeNothing freezes Redis (SIGSTOP) for longer than
// REDIS_TIMEOUT, several times, while refreshes, logins, logouts and
// revocations by id are in flight. Requests sent before a freeze sit in
// Redis's socket buffers and run when it wakes, after the replica has
// answered 503. Every request answered 503 must have changed nothing: a
// refreshed token still works, a logged-out or revoked session still
// works, and no login left a session behind.
func TestLateWritesChangeNothing(t *testing.T) {
	t.Parallel()
	const (
		// The default: its margin (a quarter) absorbs the scheduling
		// delays of a loaded machine and the race detector, which a
		// shorter timeout's would not.
		timeout = 500 * time.Millisecond
		freezes = 4
		workers = 4 // of each kind
	)
	rds := redistest.Start(t)
	r := startReplica(t, baseEnv(rds.Addr(), "late").with(
		"REDIS_TIMEOUT", timeout.String(), "SESSION_MAX_PER_USER", "1000", "LOG_LEVEL", "info"))
	for _, u := range []string{"refresher", "joiner", "leaver", "revoker"} {
		r.register(t, u, pw)
	}
	// Sessions to refresh, log out and revoke, made before the freezes.
	refreshing := make([]string, workers)
	for i := range refreshing {
		refreshing[i] = r.login(t, "refresher", pw)
	}
	leaving := make([][]string, workers)
	for i := range leaving {
		for range 8 {
			leaving[i] = append(leaving[i], r.login(t, "leaver", pw))
		}
	}
	admin := r.login(t, "revoker", pw)
	revoking := make([][]target, workers)
	for i := range revoking {
		for range 8 {
			tok := r.login(t, "revoker", pw)
			revoking[i] = append(revoking[i], target{token: tok, id: current(t, r.sessions(t, tok)).ID})
		}
	}
	joinerFirst := r.login(t, "joiner", pw)

	// Enough idle connections in the pool that the requests of every
	// worker go out on a connection that is already open when Redis
	// freezes: a new connection would wait for its handshake and never
	// send the request itself.
	var warm sync.WaitGroup
	for range 4 * workers {
		warm.Go(func() { r.do(t, http.MethodGet, "/profile", "", "X-Session-Id", admin) })
	}
	warm.Wait()

	var (
		mu       sync.Mutex
		answered = map[string]int{} // "kind status" -> count
		mustLive []string           // tokens a 503 must have left working
		mustGone []string           // tokens a 2xx must have ended
		joined   = 1                // sessions of joiner, counting joinerFirst
		failures []string
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	locked := func(f func()) {
		mu.Lock()
		defer mu.Unlock()
		f()
	}
	note := func(kind string, status int) { locked(func() { answered[kind+" "+strconv.Itoa(status)]++ }) }
	mustWork := func(tok string) { locked(func() { mustLive = append(mustLive, tok) }) }
	mustEnd := func(tok string) { locked(func() { mustGone = append(mustGone, tok) }) }
	unexpect := func(s string) { locked(func() { failures = append(failures, s) }) }
	for i := range workers {
		wg.Go(func() { // refresh the same session again and again
			tok := refreshing[i]
			for !stopped() {
				res, err := r.try(http.MethodPost, "/auth/refresh", "", []string{"X-Session-Id", tok})
				if err != nil {
					unexpect("refresh: " + err.Error())
					return
				}
				note("refresh", res.status)
				switch res.status {
				case http.StatusOK:
					tok = decode[loginResponse](t, res).SessionID
				case http.StatusServiceUnavailable:
					// The client keeps the token it has: it must still work.
				default:
					unexpect("refresh of a token whose refreshes were all answered: " + string(res.body))
					return
				}
			}
			mustWork(tok)
		})
		wg.Go(func() { // log in again and again
			for !stopped() {
				res, err := r.try(http.MethodPost, "/auth/login", credentials("joiner", pw), nil)
				if err != nil {
					unexpect("login: " + err.Error())
					return
				}
				note("login", res.status)
				if res.status == http.StatusOK {
					locked(func() { joined++ })
				}
			}
		})
		wg.Go(func() { // log out, one session after another
			for _, tok := range leaving[i] {
				if stopped() {
					return
				}
				res, err := r.try(http.MethodPost, "/auth/logout", "", []string{"X-Session-Id", tok})
				if err != nil {
					unexpect("logout: " + err.Error())
					return
				}
				note("logout", res.status)
				switch res.status {
				case http.StatusOK:
					mustEnd(tok)
				case http.StatusServiceUnavailable:
					mustWork(tok)
				default:
					unexpect("logout: " + string(res.body))
				}
			}
		})
		wg.Go(func() { // revoke by id, one session after another
			for _, tg := range revoking[i] {
				if stopped() {
					return
				}
				res, err := r.try(http.MethodDelete, "/auth/sessions/"+tg.id, "", []string{"X-Session-Id", admin})
				if err != nil {
					unexpect("revoke: " + err.Error())
					return
				}
				note("revoke", res.status)
				switch res.status {
				case http.StatusNoContent:
					mustEnd(tg.token)
				case http.StatusServiceUnavailable:
					mustWork(tg.token)
				default:
					unexpect("revoke: " + string(res.body))
				}
			}
		})
	}

	for range freezes {
		time.Sleep(150 * time.Millisecond) // requests flow
		rds.Pause()
		time.Sleep(2 * timeout) // every request in flight gives up
		rds.Resume()
		waitFor(t, 5*time.Second, "/readyz to answer 200 again", func() bool {
			res, err := r.try(http.MethodGet, "/readyz", "", nil)
			return err == nil && res.status == http.StatusOK
		})
	}
	close(stop)
	wg.Wait()
	t.Logf("answers: %v", answered)
	for _, f := range failures {
		t.Error(f)
	}
	for _, kind := range []string{"refresh", "login", "logout", "revoke"} {
		if answered[kind+" 503"] == 0 {
			t.Logf("no %s was answered 503: this run did not exercise it", kind)
		}
	}

	// Redis counts the scripts it refused as too late by their error code.
	info := rds.Client(t).Info(context.Background(), "errorstats").Val()
	late := regexp.MustCompile(`errorstat_LATE:count=(\d+)`).FindStringSubmatch(info)
	if late == nil {
		t.Errorf("Redis refused no script as too late (INFO errorstats %q): the freezes caught no write in flight", info)
	} else {
		t.Logf("scripts Redis ran after the deadline and refused: %s", late[1])
	}

	// Whatever a frozen Redis ran late has run by now: it read those
	// requests from its sockets as soon as it woke, before anything sent
	// after it woke.
	for _, tok := range mustLive {
		if res := r.profile(t, tok); res.status != http.StatusOK {
			t.Errorf("a session whose refresh, logout or revocation was answered 503 got %d %s, want 200", res.status, res.body)
		}
	}
	for _, tok := range mustGone {
		if res := r.profile(t, tok); res.status != http.StatusUnauthorized {
			t.Errorf("a session whose logout or revocation was answered 2xx got %d, want 401", res.status)
		}
	}
	if got := len(r.sessions(t, joinerFirst)); got != joined {
		t.Errorf("joiner has %d sessions, want %d (one per login answered 200): a login answered 503 left a session behind", got, joined)
	}
}

// target is a session to revoke by its public id.
type target struct {
	token, id string
}
