package main

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/redistest"
)

// BenchmarkProfileUnderSessionFlood measures one user's GET /profile while
// another account hammers, in parallel, the routes whose Redis work used to
// grow with its sessions: GET /auth/sessions (two clients), DELETE
// /auth/sessions/{bogus} and logins. The account starts with the index a
// hoarding script could build under the previous version, which had no cap:
// 3,000 live sessions. "Quiet" is the same replica without the flood.
//
// Reported: the victim's p50 and p99 in µs and its answers other than 200
// (which should be none), each flooding route's p99 in ms
// and how many calls it made, and Redis's CPU over the run (INFO cpu), which
// shows how busy the flood keeps Redis apart from the replica's own work.
// Run it alone: go test -run '^$' -bench ProfileUnderSessionFlood -benchtime 3000x ./cmd/api/
func BenchmarkProfileUnderSessionFlood(b *testing.B) {
	for _, flood := range []bool{false, true} {
		name := "Quiet"
		if flood {
			name = "Flood"
		}
		b.Run(name, func(b *testing.B) { benchProfileUnderFlood(b, flood) })
	}
}

func benchProfileUnderFlood(b *testing.B, flood bool) {
	rds := redistest.Start(b)
	r := startReplica(b, baseEnv(rds.Addr(), "flood").with(
		"LOG_LEVEL", "info", "LOGIN_LIMIT_PER_USER", "1000000/s", "LOGIN_LIMIT_PER_IP", "1000000/s"))
	rdb := rds.Client(b)
	r.register(b, "victim", pw)
	victim := r.login(b, "victim", pw)
	r.register(b, "hoarder", pw)
	hoarder := r.login(b, "hoarder", pw)
	seedLiveSessions(b, rdb, userIDOf(b, rdb, "hoarder"), "hoarder", 3000)

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	floods := []struct {
		name             string
		method, path, by string
	}{
		{"sessions", http.MethodGet, "/auth/sessions", ""},
		{"sessions", http.MethodGet, "/auth/sessions", ""},
		{"bogus-delete", http.MethodDelete, "/auth/sessions/AAAAAAAAAAAAAAAAAAAAAA", ""},
		{"login", http.MethodPost, "/auth/login", credentials("hoarder", pw)},
	}
	took := make([][]time.Duration, len(floods))
	if flood {
		for i, f := range floods {
			wg.Go(func() {
				for ctx.Err() == nil {
					var headers []string
					if f.by == "" && f.method != http.MethodPost {
						headers = []string{"X-Session-Id", hoarder}
					}
					start := time.Now()
					if _, err := r.try(f.method, f.path, f.by, headers); err != nil {
						return
					}
					took[i] = append(took[i], time.Since(start))
				}
			})
		}
	}

	cpu0 := redisCPU(b, rdb)
	began := time.Now()
	var lat []time.Duration
	failed := 0 // answers other than 200, such as the 503 of a Redis kept busy
	for b.Loop() {
		start := time.Now()
		res, err := r.try(http.MethodGet, "/profile", "", []string{"X-Session-Id", victim})
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatalf("GET /profile: %v", err)
		}
		if res.status != http.StatusOK {
			failed++
		}
	}
	wall := time.Since(began)
	cpu := redisCPU(b, rdb) - cpu0
	stop()
	wg.Wait()

	b.ReportMetric(float64(percentile(lat, 50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(percentile(lat, 99).Microseconds()), "p99-µs")
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "redis-cpu-%")
	b.ReportMetric(float64(failed), "not-200")
	byRoute := map[string][]time.Duration{}
	for i, f := range floods {
		byRoute[f.name] = append(byRoute[f.name], took[i]...)
	}
	for name, ds := range byRoute {
		if len(ds) == 0 {
			continue
		}
		b.ReportMetric(float64(percentile(ds, 99).Microseconds())/1000, name+"-p99-ms")
		b.ReportMetric(float64(len(ds)), name+"-calls")
	}
}

// percentile returns the p-th percentile of ds, which it sorts.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, len(ds)*p/100)]
}

// redisCPU returns the CPU time Redis has used (user and system).
func redisCPU(b *testing.B, rdb redis.UniversalClient) time.Duration {
	b.Helper()
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatalf("INFO cpu: %v", err)
	}
	var total float64
	for line := range strings.SplitSeq(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("INFO cpu %s: %v", k, err)
			}
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}
