package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/redistest"
)

// TestRedisCommandsPerRoute counts, with INFO commandstats, the commands each
// route sends to Redis. GET /profile is the hot path: with no touch due it
// must be exactly one HGETALL, one round trip.
func TestRedisCommandsPerRoute(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	r := startReplica(t, baseEnv(rds.Addr(), "commands")) // idle 1h: no touch due

	// measure returns the commands Redis ran during f for requests: not
	// those of the test's own transactions around f, and not the SETs of
	// the replica's background probe. The probe's key holds how many
	// probes it has written; each transaction reads it at the same instant
	// as it resets or reads the statistics, so no probe falls in between.
	admin := rds.Client(t)
	probeKey := "probe:commands"
	measure := func(f func()) map[string]int64 {
		t.Helper()
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
		var after *redis.StringCmd
		var info *redis.StringCmd
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
		// The test's own transactions; no route uses MULTI.
		for _, cmd := range []string{"config|resetstat", "multi", "exec"} {
			delete(got, cmd)
		}
		if got["set"] -= a - b; got["set"] <= 0 {
			delete(got, "set")
		}
		return got
	}

	// The counts are those of a fresh Redis, so they include one EVAL
	// after each script's first EVALSHA (NOSCRIPT) and the commands the
	// scripts run; the README quotes them. A route that grows more costly
	// fails here.
	var tok, other string
	for _, step := range []struct {
		name string
		want int64
		f    func()
	}{
		// The replica's connection is open already: its probe opened
		// it at start, so no step pays for a handshake.
		{"register", 9, func() { r.register(t, "counter", pw) }},
		{"login", 17, func() { tok = r.login(t, "counter", pw) }},
		{"profile", 1, func() { wantStatus(t, r.profile(t, tok), http.StatusOK) }},
		{"sessions", 5, func() { r.sessions(t, tok) }},
		{"refresh", 13, func() {
			res := r.do(t, http.MethodPost, "/auth/refresh", "", "X-Session-Id", tok)
			wantStatus(t, res, http.StatusOK)
			tok = decode[loginResponse](t, res).SessionID
		}},
		{"revoke", 8, func() {
			other = r.login(t, "counter", pw)
			id := current(t, r.sessions(t, other)).ID
			rds.ResetStats(t)
			wantStatus(t, r.do(t, http.MethodDelete, "/auth/sessions/"+id, "", "X-Session-Id", tok), http.StatusNoContent)
		}},
		{"logout", 5, func() {
			wantStatus(t, r.do(t, http.MethodPost, "/auth/logout", "", "X-Session-Id", tok), http.StatusOK)
		}},
		{"logout-all", 7, func() {
			tok = r.login(t, "counter", pw)
			r.login(t, "counter", pw)
			rds.ResetStats(t)
			wantStatus(t, r.do(t, http.MethodPost, "/auth/logout-all", "", "X-Session-Id", tok), http.StatusOK)
		}},
	} {
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

	t.Run("ProfileIsOneHGETALL", func(t *testing.T) {
		const n = 50
		tok := r.login(t, "counter", pw)
		wantStatus(t, r.profile(t, tok), http.StatusOK) // the connection is warm
		got := measure(func() {
			for range n {
				wantStatus(t, r.profile(t, tok), http.StatusOK)
			}
		})
		if len(got) != 1 || got["hgetall"] != n {
			t.Errorf("commands for %d GET /profile got %v, want map[hgetall:%d]", n, got, n)
		}
	})
}

// sorted renders a command count map in a stable order for logs.
func sorted(m map[string]int64) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return out
}
