package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/redistest"
)

// TestRedisCommandsPerRoute counts, with INFO commandstats, the commands each
// route sends to Redis. GET /profile is the hot path: with no touch due it
// must be exactly one GET, one round trip.
func TestRedisCommandsPerRoute(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	r := startReplica(t, baseEnv(rds.Addr(), "commands")) // idle 1h: no touch due

	measure := func(f func()) map[string]int64 {
		t.Helper()
		return redisCommands(t, rds, r.id, f)
	}

	// The counts are those of a fresh Redis, so they include one EVAL
	// after each script's first EVALSHA (NOSCRIPT) and the commands the
	// scripts run; the README quotes them. The listing includes its rate
	// limit twice (limitCommands each): the reservation of the largest
	// listing before it, and the settlement that gives back what a listing
	// of one session did not use (its script's first EVAL included). A
	// route that grows more costly
	// fails here.
	var tok, other, id string
	for _, step := range []struct {
		name string
		want int64
		prep func() // not measured
		f    func()
	}{
		{"register", 11, nil, func() { r.register(t, "counter", pw) }},
		{"login", 24, nil, func() { tok = r.login(t, "counter", pw) }},
		{"profile", 1, nil, func() { wantStatus(t, r.profile(t, tok), http.StatusOK) }},
		{"sessions", 5 + 2*limitCommands, nil, func() { r.sessions(t, tok) }},
		{"refresh", 7, nil, func() {
			res := r.do(t, http.MethodPost, "/auth/refresh", "", "X-Session-Id", tok)
			wantStatus(t, res, http.StatusOK)
			tok = decode[loginResponse](t, res).SessionID
		}},
		{"revoke", 8, func() {
			other = r.login(t, "counter", pw)
			id = current(t, r.sessions(t, other)).ID
		}, func() {
			wantStatus(t, r.do(t, http.MethodDelete, "/auth/sessions/"+id, "", "X-Session-Id", tok), http.StatusNoContent)
		}},
		{"logout", 8, nil, func() {
			wantStatus(t, r.do(t, http.MethodPost, "/auth/logout", "", "X-Session-Id", tok), http.StatusOK)
		}},
		{"logout-all", 10, func() {
			tok = r.login(t, "counter", pw)
			r.login(t, "counter", pw)
		}, func() {
			wantStatus(t, r.do(t, http.MethodPost, "/auth/logout-all", "", "X-Session-Id", tok), http.StatusOK)
		}},
	} {
		if step.prep != nil {
			step.prep()
		}
		got := measure(step.f)
		var total int64
		for _, n := range got {
			total += n
		}
		t.Logf("%-10s %d commands: %v", step.name, total, sorted(got))
		if total != step.want {
			t.Errorf("%s: got %d Redis commands %v, want %d", step.name, total, sorted(got), step.want)
		}
	}

	t.Run("ProfileIsOneGET", func(t *testing.T) {
		const n = 50
		tok := r.login(t, "counter", pw)
		wantStatus(t, r.profile(t, tok), http.StatusOK) // the connection is warm
		got := measure(func() {
			for range n {
				wantStatus(t, r.profile(t, tok), http.StatusOK)
			}
		})
		if len(got) != 1 || got["get"] != n {
			t.Errorf("commands for %d GET /profile got %v, want map[get:%d]", n, got, n)
		}
	})
}

// limitCommands is what one check of a rate limit sends to Redis, once its
// script is loaded (login loads it): the EVALSHA of the GCRA script and the
// TIME of its deadline, the TIME, GET and SET of the GCRA, in one round
// trip.
const limitCommands = 5

// redisCommands returns the commands Redis ran during f for requests: not
// those of the test's own transactions around f, and not the SETs of the
// background probe of the replica named instance. The probe's key holds
// how many probes it has written; each transaction reads it at the same
// instant as it resets or reads the statistics, so no probe can fall
// between the two.
func redisCommands(t testing.TB, rds *redistest.Server, instance string, f func()) map[string]int64 {
	t.Helper()
	admin := rds.Client(t)
	probeKey := "probe:" + instance
	ctx := context.Background()
	var before *redis.StringCmd
	if _, err := admin.TxPipelined(ctx, func(p redis.Pipeliner) error {
		before = p.Get(ctx, probeKey)
		p.ConfigResetStat(ctx)
		return nil
	}); err != nil {
		t.Fatalf("resetting stats: %v", err)
	}
	f()
	var info, after *redis.StringCmd
	if _, err := admin.TxPipelined(ctx, func(p redis.Pipeliner) error {
		info = p.Info(ctx, "commandstats")
		after = p.Get(ctx, probeKey)
		return nil
	}); err != nil {
		t.Fatalf("reading stats: %v", err)
	}
	got, err := redistest.ParseCommandStats(info.Val())
	if err != nil {
		t.Fatal(err)
	}
	b, errB := before.Int64()
	a, errA := after.Int64()
	if errB != nil || errA != nil {
		t.Fatalf("probe key %s: got %v and %v, want a count", probeKey, errB, errA)
	}
	// The test's own transactions (no route uses MULTI), and the
	// handshake of a connection the pool opens, which it may do during
	// any step: the probe shares the pool and may hold a connection just
	// when a request needs one.
	for _, cmd := range []string{"config|resetstat", "multi", "exec", "hello", "client|setinfo"} {
		delete(got, cmd)
	}
	if got["set"] -= a - b; got["set"] <= 0 {
		delete(got, "set")
	}
	return got
}

// sorted renders a command count map in a stable order for logs.
func sorted(m map[string]int64) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return out
}

// TestRedisCommandsAtCap checks that no route's Redis work grows with the
// sessions a user has had: the user is filled to the default cap
// (SESSION_MAX_PER_USER=100) and, before each route, its index gets
// thousands of members whose sessions are gone, some of them past the
// absolute lifetime, as a version without the cap could leave it. Each route
// must stay within a bound that depends on the cap alone.
func TestRedisCommandsAtCap(t *testing.T) {
	t.Parallel()
	const limit = 100 // the default of SESSION_MAX_PER_USER
	rds := redistest.Start(t)
	r := startReplica(t, baseEnv(rds.Addr(), "atcap")) // the default cap
	rdb := rds.Client(t)
	r.register(t, "hoarder", pw)
	toks := make([]string, limit)
	for i := range toks {
		toks[i] = r.login(t, "hoarder", pw)
	}
	uid := userIDOf(t, rdb, "hoarder")
	// Older than every live session: 4,000 within the absolute lifetime,
	// 1,000 past it.
	stale := append(staleMembers(4000, time.Now().Add(-time.Hour)),
		staleMembers(1000, time.Now().Add(-25*time.Hour))...)

	measure := func(prep, f func()) int64 {
		t.Helper()
		if prep != nil {
			prep()
		}
		addToIndex(t, rdb, uid, stale)
		var total int64
		for _, n := range redisCommands(t, rds, r.id, f) {
			total += n
		}
		return total
	}

	tok := toks[limit-1]
	var id string
	for _, step := range []struct {
		name string
		max  int64
		prep func()
		f    func()
	}{
		{"profile", 1, nil, func() { wantStatus(t, r.profile(t, tok), http.StatusOK) }},
		{"login", 4*limit + 40, nil, func() {
			r.login(t, "hoarder", pw)
			wantJSON(t, r.profile(t, toks[0]), http.StatusUnauthorized, `{"error":"Invalid session"}`)
		}},
		{"sessions", 2*limit + 10, nil, func() {
			if got := len(r.sessions(t, tok)); got != limit {
				t.Errorf("sessions got %d, want %d", got, limit)
			}
		}},
		{"revoke-bogus", 10, nil, func() {
			wantStatus(t, r.do(t, http.MethodDelete, "/auth/sessions/AAAAAAAAAAAAAAAAAAAAAA", "", "X-Session-Id", tok), http.StatusNotFound)
		}},
		{"revoke", 8, func() { id = current(t, r.sessions(t, toks[1])).ID }, func() {
			wantStatus(t, r.do(t, http.MethodDelete, "/auth/sessions/"+id, "", "X-Session-Id", tok), http.StatusNoContent)
		}},
		{"refresh", 20, nil, func() {
			res := r.do(t, http.MethodPost, "/auth/refresh", "", "X-Session-Id", tok)
			wantStatus(t, res, http.StatusOK)
			tok = decode[loginResponse](t, res).SessionID
		}},
		{"logout", 8, nil, func() {
			wantStatus(t, r.do(t, http.MethodPost, "/auth/logout", "", "X-Session-Id", toks[2]), http.StatusOK)
		}},
		{"logout-all", 2*limit + 10, nil, func() {
			wantStatus(t, r.do(t, http.MethodPost, "/auth/logout-all", "", "X-Session-Id", tok), http.StatusOK)
			wantStatus(t, r.profile(t, toks[3]), http.StatusUnauthorized)
		}},
	} {
		got := measure(step.prep, step.f)
		t.Logf("%-12s %d commands", step.name, got)
		if got > step.max {
			t.Errorf("%s: got %d Redis commands, want at most %d", step.name, got, step.max)
		}
	}
}
