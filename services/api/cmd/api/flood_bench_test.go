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
// hoarding script could build under a version without the cap:
// 3,000 live sessions. "Quiet" is the same replica without the flood.
//
// Reported: the victim's p50 and p99 in µs and its answers other than 200
// (which should be none), each flooding route's p99 in ms
// and how many calls it made and how many of them were refused (429 or
// 5xx), the p99 of a PING to Redis sent after each
// profile (Redis alone, apart from the replica, which shares the machine's
// cores with the flood), Redis's CPU over the run (INFO cpu) and the
// longest any one command or script ran in Redis (LATENCY LATEST): how long
// the flood could hold every other client back.
//
// The replica runs with the default limits, so the flood's listings spend
// the hoarder's SESSIONS_LIMIT_PER_USER: most of them are refused, and
// what the victim feels is the cost of those refusals. Its revocations of
// a bogus id are never limited: each costs a lookup and a few commands.
//
// "Busy" is the control: the same four clients in the same loops, each
// reading its own /profile instead. On a machine whose cores the load
// shares, any four busy clients slow everyone down; what the bound on a
// user's Redis work must show is that the hoarder's routes cost the
// victim no more than ordinary traffic does (Flood close to Busy), not
// that four clients cost nothing. "FloodFewSessions" is the other
// control: the same flood from an account with one session, so that
// Flood against it shows what the 3,000 sessions themselves cost others.
// The two "Sustained" cases start measuring only once a listing of the
// flood has been refused: a run is about a second of the victim's
// requests, in which the burst of the listings' budget would otherwise
// weigh as much as five seconds of the attack it can keep up.
// Run it alone: go test -run '^$' -bench ProfileUnderSessionFlood -benchtime 3000x ./cmd/api/
func BenchmarkProfileUnderSessionFlood(b *testing.B) {
	profile := floodLoop{"profile", http.MethodGet, "/profile", ""}
	flood := []floodLoop{
		{"sessions", http.MethodGet, "/auth/sessions", ""},
		{"sessions", http.MethodGet, "/auth/sessions", ""},
		{"bogus-delete", http.MethodDelete, "/auth/sessions/AAAAAAAAAAAAAAAAAAAAAA", ""},
		{"login", http.MethodPost, "/auth/login", credentials("hoarder", pw)},
	}
	for _, tc := range []struct {
		name  string
		loops []floodLoop
		hoard int // live sessions the hammering account starts with, besides its own
	}{
		{"Quiet", nil, 3000},
		{"Busy", []floodLoop{profile, profile, profile, profile}, 3000},
		{"FloodFewSessions", flood, 0},
		{"Flood", flood, 3000},
	} {
		b.Run(tc.name, func(b *testing.B) { benchProfileUnderFlood(b, tc.loops, tc.hoard, false) })
	}
	// The same two floods measured once the hoarder's burst is spent:
	// what an attack that keeps going costs others.
	b.Run("FloodFewSessionsSustained", func(b *testing.B) { benchProfileUnderFlood(b, flood, 0, true) })
	b.Run("FloodSustained", func(b *testing.B) { benchProfileUnderFlood(b, flood, 3000, true) })
}

// floodLoop is one client of the hoarding account, sending one request
// again and again; without a body it sends the hoarder's token.
type floodLoop struct {
	name             string
	method, path, by string
}

func benchProfileUnderFlood(b *testing.B, floods []floodLoop, hoard int, sustained bool) {
	rds := redistest.Start(b)
	// The default limits: an attacker has no others. Past 10 a minute
	// the hoarder's logins are refused with 429 before any hash, and its
	// listings of 100 sessions cost 10 units of SESSIONS_LIMIT_PER_USER
	// each (a burst of 10 listings, then 2 a second; the one-session
	// account gets 100, then 20 a second), the rest refused with 429
	// after the session lookup, before any of their work.
	r := startReplica(b, baseEnv(rds.Addr(), "flood").with(
		"LOG_LEVEL", "info", "LOGIN_LIMIT_PER_USER", "", "LOGIN_LIMIT_PER_IP", "",
		"SESSIONS_LIMIT_PER_USER", ""))
	rdb := rds.Client(b)
	r.register(b, "victim", pw)
	victim := r.login(b, "victim", pw)
	r.register(b, "hoarder", pw)
	hoarder := r.login(b, "hoarder", pw)
	if hoard > 0 {
		seedLiveSessions(b, rdb, userIDOf(b, rdb, "hoarder"), "hoarder", hoard)
	}

	ctx, stop := context.WithCancel(context.Background())
	// Closed when a listing of the flood is first refused: the hoarder
	// has spent its burst, and what follows is the attack it can keep up.
	spent := make(chan struct{})
	var spentOnce sync.Once
	var wg sync.WaitGroup
	took := make([][]time.Duration, len(floods))
	refused := make([]int, len(floods)) // 429 (a rate limit) or 5xx
	for i, f := range floods {
		wg.Go(func() {
			for ctx.Err() == nil {
				var headers []string
				if f.by == "" {
					headers = []string{"X-Session-Id", hoarder}
				}
				start := time.Now()
				res, err := r.try(f.method, f.path, f.by, headers)
				if err != nil {
					return
				}
				took[i] = append(took[i], time.Since(start))
				if res.status == http.StatusTooManyRequests || res.status >= 500 {
					refused[i]++
					if f.path == "/auth/sessions" && res.status == http.StatusTooManyRequests {
						spentOnce.Do(func() { close(spent) })
					}
				}
			}
		})
	}

	// Redis records every command (a script counts as one) that runs
	// 1 ms or longer, and the longest of them.
	if err := rdb.ConfigSet(context.Background(), "latency-monitor-threshold", "1").Err(); err != nil {
		b.Fatalf("CONFIG SET latency-monitor-threshold: %v", err)
	}
	rdb.Do(context.Background(), "LATENCY", "RESET")
	if sustained && slices.ContainsFunc(floods, func(f floodLoop) bool { return f.path == "/auth/sessions" }) {
		select {
		case <-spent:
		case <-time.After(30 * time.Second):
			b.Fatal("the flood's listings were never refused: is SESSIONS_LIMIT_PER_USER off?")
		}
	}
	cpu0 := redisCPU(b, rdb)
	began := time.Now()
	var lat, pings []time.Duration
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
		// Redis alone, without the replica: a long script of the flood
		// holds every other command back.
		start = time.Now()
		if err := rdb.Ping(context.Background()).Err(); err != nil {
			b.Fatalf("PING: %v", err)
		}
		pings = append(pings, time.Since(start))
	}
	wall := time.Since(began)
	cpu := redisCPU(b, rdb) - cpu0
	stop()
	wg.Wait()

	b.ReportMetric(float64(percentile(lat, 50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(percentile(lat, 99).Microseconds()), "p99-µs")
	b.ReportMetric(float64(percentile(pings, 99).Microseconds()), "ping-p99-µs")
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "redis-cpu-%")
	b.ReportMetric(float64(longestCommand(b, rdb).Milliseconds()), "redis-longest-ms")
	b.ReportMetric(float64(failed), "not-200")
	byRoute := map[string][]time.Duration{}
	refusedByRoute := map[string]int{}
	for i, f := range floods {
		byRoute[f.name] = append(byRoute[f.name], took[i]...)
		refusedByRoute[f.name] += refused[i]
	}
	for name, ds := range byRoute {
		if len(ds) == 0 {
			continue
		}
		b.ReportMetric(float64(percentile(ds, 99).Microseconds())/1000, name+"-p99-ms")
		b.ReportMetric(float64(len(ds)), name+"-calls")
		b.ReportMetric(float64(refusedByRoute[name]), name+"-refused")
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

// longestCommand returns the longest a single command (or script) ran in
// Redis since LATENCY RESET, as far as it was 1 ms or longer; zero if none.
func longestCommand(b *testing.B, rdb redis.UniversalClient) time.Duration {
	b.Helper()
	rows, err := rdb.Do(context.Background(), "LATENCY", "LATEST").Slice()
	if err != nil {
		b.Fatalf("LATENCY LATEST: %v", err)
	}
	var longest int64
	for _, row := range rows {
		// event name, time of the latest, latest ms, all-time max ms
		if r, ok := row.([]any); ok && len(r) == 4 && r[0] == "command" {
			if ms, ok := r[3].(int64); ok {
				longest = max(longest, ms)
			}
		}
	}
	return time.Duration(longest) * time.Millisecond
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
