package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"redis-session-app/services/api/internal/poll"
	"redis-session-app/services/api/internal/redistest"
)

// redisUp reports whether the replica's /metrics shows api_redis_up at
// want.
func redisUp(t *testing.T, r *replica, want string) bool {
	t.Helper()
	res := r.do(t, http.MethodGet, "/metrics", "")
	return res.status == http.StatusOK && slices.Contains(strings.Split(string(res.body), "\n"), "api_redis_up "+want)
}

// TestReadyzWhenRedisRefusesWrites: a Redis that answers PING but takes no
// write (full under noeviction, read-only after a failover) cannot serve a
// login, so the replica is not ready; api_redis_up follows with no request
// other than the scrape; both heal by themselves.
func TestReadyzWhenRedisRefusesWrites(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		refuse  func(*redistest.Server, testing.TB)
		instead string // what a request that writes gets meanwhile
	}{
		{"OutOfMemory", (*redistest.Server).FillMemory, `{"error":"Session store unavailable"}`},
		{"ReadOnly", (*redistest.Server).MakeReadOnly, `{"error":"Session store unavailable"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rds := redistest.Start(t)
			r := startReplica(t, baseEnv(rds.Addr(), "writes-"+tc.name))
			poll.For(t, 5*time.Second, "/readyz to answer 200", func() bool {
				return r.do(t, http.MethodGet, "/readyz", "").status == http.StatusOK
			})
			poll.For(t, 5*time.Second, "api_redis_up 1", func() bool { return redisUp(t, r, "1") })

			tc.refuse(rds, t)
			poll.For(t, 5*time.Second, "api_redis_up 0", func() bool { return redisUp(t, r, "0") })
			wantJSON(t, r.do(t, http.MethodGet, "/readyz", ""), http.StatusServiceUnavailable, `{"error":"Not ready"}`)
			wantJSON(t, r.do(t, http.MethodPost, "/auth/register", credentials("refused", pw)), http.StatusServiceUnavailable, tc.instead)

			rds.AcceptWrites(t)
			poll.For(t, 5*time.Second, "/readyz to answer 200 again", func() bool {
				return r.do(t, http.MethodGet, "/readyz", "").status == http.StatusOK
			})
			if !redisUp(t, r, "1") {
				t.Error("no line api_redis_up 1 in /metrics while ready")
			}
			r.register(t, "refused", pw)
		})
	}
}

// TestRedisUpWithoutRedis: a replica that never reached Redis shows
// api_redis_up 0 from the start, so the alert fires before any request.
func TestRedisUpWithoutRedis(t *testing.T) {
	t.Parallel()
	r := startReplica(t, baseEnv(closedAddr(t), "no-redis"))
	if !redisUp(t, r, "0") {
		t.Error("no line api_redis_up 0 in /metrics")
	}
}

// TestReadyzAsksRedisNothing: /readyz reads the background probe's last
// outcome, so however often anyone asks, Redis sees only the probe's one
// write a second.
func TestReadyzAsksRedisNothing(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	r := startReplica(t, baseEnv(rds.Addr(), "readyz-cost"))
	poll.For(t, 5*time.Second, "/readyz to answer 200", func() bool {
		return r.do(t, http.MethodGet, "/readyz", "").status == http.StatusOK
	})

	const n = 500
	rds.ResetStats(t)
	start := time.Now()
	for range n {
		wantStatus(t, r.do(t, http.MethodGet, "/readyz", ""), http.StatusOK)
	}
	elapsed := time.Since(start)
	got := rds.CommandStats(t)
	delete(got, "info")
	delete(got, "config|resetstat")
	delete(got, "hello") // of the connection INFO comes on
	// One probe a second, plus one for the probe that may already run
	// when the count starts.
	maxProbes := int64(elapsed/time.Second) + 2
	var total int64
	for _, c := range got {
		total += c
	}
	if total > maxProbes || total != got["set"] {
		t.Errorf("%d /readyz in %v: got Redis commands %v, want at most %d SETs of the probe", n, elapsed, sorted(got), maxProbes)
	}
}
