package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"redis-session-app/loadtest/internal/scenario"
)

// TestProxyConfigOfTheRepository rewrites the real nginx.conf and has nginx
// check the result, so that a change to nginx.conf that the benchmark can
// no longer follow fails here and not in the middle of a benchmark.
func TestProxyConfigOfTheRepository(t *testing.T) {
	conf, err := os.ReadFile("../../nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	next := 28000
	otherPort := func() (int, error) { next++; return next, nil }
	got, err := proxyConfig(string(conf), []string{"127.0.0.1:3001", "127.0.0.1:3002"}, 18080, filepath.Join(dir, "nginx.pid"), otherPort)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"server 127.0.0.1:3001 max_fails", "server 127.0.0.1:3002 max_fails", "listen 127.0.0.1:18080", "pid " + dir} {
		if !strings.Contains(got, want) {
			t.Errorf("rewritten nginx.conf lacks %q", want)
		}
	}
	// Every listener is on loopback, none on a port of the compose file.
	for _, m := range anyListen.FindAllString(got, -1) {
		if !strings.Contains(m, "listen 127.0.0.1:") {
			t.Errorf("rewritten nginx.conf has %q, want every listener on 127.0.0.1", m)
		}
	}
	if upstreamServer.MatchString(got) {
		t.Error("rewritten nginx.conf still has the server api-replicas:3000 line")
	}
	// Only the rewritten lines differ: each server line became two.
	servers := len(upstreamServer.FindAllString(string(conf), -1))
	if a, b := strings.Count(string(conf), "\n"), strings.Count(got, "\n"); b != a+servers {
		t.Errorf("rewritten nginx.conf has %d lines, want %d (one more per upstream server line)", b, a+servers)
	}
	requireNginx(t)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("nginx", "-t", "-q", "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log")).CombinedOutput(); err != nil {
		t.Errorf("nginx -t of the rewritten nginx.conf: %v: %s", err, out)
	}
}

func TestProxyConfigRefusesAnUnknownShape(t *testing.T) {
	tests := []struct{ name, conf string }{
		{"NoUpstreamServer", "pid /tmp/x.pid;\nhttp { server { listen 8080; } }\n"},
		{"NoListener", "pid /tmp/x.pid;\nupstream api { server api-replicas:3000; }\n"},
		{"NoPid", "upstream api { server api-replicas:3000; }\nserver { listen 8080; }\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := proxyConfig(tc.conf, []string{"127.0.0.1:1"}, 1, "/tmp/p", func() (int, error) { return 2, nil }); err == nil {
				t.Error("got no error, want one")
			}
		})
	}
}

func TestParseCommandStats(t *testing.T) {
	info := "# Commandstats\r\ncmdstat_hgetall:calls=1200,usec=3000,usec_per_call=2.50,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_client|setinfo:calls=6,usec=3,usec_per_call=0.50,rejected_calls=0,failed_calls=0\r\ncmdstat_info:calls=4,usec=1\r\n"
	got := parseCommandStats(info)
	if got["hgetall"] != 1200 || got["client|setinfo"] != 6 || got["info"] != 4 || len(got) != 3 {
		t.Errorf("parseCommandStats = %v, want hgetall 1200, client|setinfo 6, info 4", got)
	}
	got["set"] = 5 // a background probe's writes
	per, total, background := perRequest(map[string]uint64{"hgetall": 200, "info": 2}, got, 1000)
	if total != 1 || background != 0.005 || per["hgetall"] != 1 || len(per) != 2 {
		t.Errorf("perRequest = %v, %g, %g; want hgetall 1 per request, set 0.005 in the background, info and client left out", per, total, background)
	}
}

// TestFigureKeepsTheAskedRate: every open-model figure says what it was
// asked, so that a shortfall reads "3000 of 4000 req/s".
func TestFigureKeepsTheAskedRate(t *testing.T) {
	asked := 4000.0
	if f := figure(&loadReport{AchievedRate: 3000, AskedRate: &asked, Shortfall: true}); f.Asked != 4000 || f.Rate != 3000 || !f.Shortfall {
		t.Errorf("figure = %+v, want rate 3000 of 4000 asked, a shortfall", f)
	}
	if f := figure(&loadReport{AchievedRate: 3000}); f.Asked != 0 {
		t.Errorf("closed-model figure = %+v, want nothing asked", f)
	}
}

func TestParseBenchmarkCSV(t *testing.T) {
	out := "\"test\",\"rps\",\"avg_latency_ms\"\n\"GET\",\"123456.79\",\"0.2\"\n"
	if v, err := parseBenchmarkCSV(out); err != nil || v != 123456.79 {
		t.Errorf("parseBenchmarkCSV = %g, %v, want 123456.79", v, err)
	}
	if _, err := parseBenchmarkCSV("ERR"); err == nil {
		t.Error("got no error for output without a GET line")
	}
}

func TestJudgeAndMarkdown(t *testing.T) {
	r := &Results{Settings: Settings{Replicas: 3, Workers: 64}}
	r.Ceilings.NginxProxy.Rate = 40000
	r.Profile.Max.Rate = 20000
	r.Profile.ReplicaCPUMicros = 35
	r.Profile.Half = Figure{Rate: 10000, Requests: 100000, Latency: Latency{P99: 4}}
	r.Profile.RedisCommandsPerRequest = 1
	r.Sessions = Sessions{SmallCount: 1000, MemoryCount: 100000, BytesPerSession: 350, LargeCount: 1000000,
		LookupSmall: Figure{Latency: Latency{P50: 1}}, LookupLarge: Figure{Latency: Latency{P50: 1.05}}}
	r.Storm = Storm{P99Ratio: 3.5}
	r.Featureless = &Reference{Max: Figure{Rate: 22000, Latency: Latency{P50: 2.5, P99: 8}}, Processes: 3, CPUMicros: 28, NginxCPUMicros: 20, RedisCPUMicros: 7, RedisCommandsPerRequest: 1,
		Half: &Figure{Rate: 10000, Asked: 10000, Requests: 100000, Latency: Latency{P50: 0.5, P99: 3.5, P999: 6}}}
	r.Ceilings.NginxProxyHalf = &Figure{Rate: 9990, Asked: 10000, Requests: 99900, Latency: Latency{P50: 0.25, P99: 1.25, P999: 2}}
	r.judge()
	want := map[string]bool{
		"GET /profile through nginx vs the proxy ceiling": true, "replica CPU": true,
		"GET /profile vs the featureless gin + go-redis handler, same run": false,
		"p99 at": true, "Redis commands": true, "Redis memory": false, "lookup p50": true, "read p99": false,
	}
	for k, v := range want {
		if got, ok := targetMet(t, r.Targets, k); !ok || got != v {
			t.Errorf("target %q met = %v (present %v), want %v; targets %+v", k, got, ok, v, r.Targets)
		}
	}
	if got := r.Featureless.ShareOfProxy; got != 0.55 {
		t.Errorf("featureless share of the proxy ceiling = %g, want 0.55", got)
	}
	wantMarkdown(t, r,
		"| target | goal | this run | met |", "50% of the proxy ceiling", "| no |",
		"| reference: a featureless gin + go-redis handler (one `GET`, no log, no metrics), same nginx settings, 3 processes (wrk, 64 connections) | 22000 req/s, p50 2.50 ms, p99 8.00 ms | 55% of the proxy ceiling; `GET /profile` reached 0.91× its rate |",
		"| CPU per request of the featureless handler | its processes 28.0 µs, nginx 20.0 µs, Redis 7.0 µs; Redis commands 1.000 | |",
		"| GET /profile vs the featureless gin + go-redis handler, same run | rate ≥ the handler's | rate 0.91× (20000 vs 22000 req/s); CPU 1.25× (35.0 vs 28.0 µs) | no |",
		"| the featureless handler, the same load | 10000 of 10000 req/s asked, p50 0.50 ms, p99 3.50 ms, p99.9 6.00 ms; 0 errors | |",
		"| the proxy ceiling (`GET /` of the trivial upstream), the same load | 9990 of 10000 req/s asked, p50 0.25 ms, p99 1.25 ms, p99.9 2.00 ms; 0 errors | |",
		"| p99 at half the rate loadtest reached (open model) | < 5 ms | 4.00 ms at 10000 req/s; same load: the featureless handler 3.50 ms, the proxy ceiling 1.25 ms | yes |",
	)

	// Met when GET /profile answers at least as fast as the reference.
	r.Targets = nil
	r.Featureless.Max.Rate = 20000
	r.judge()
	if got, ok := targetMet(t, r.Targets, "GET /profile vs the featureless"); !ok || !got {
		t.Errorf("GET /profile at the reference's rate: target met = %v (present %v), want true", got, ok)
	}
	// A results file from before the reference: no row, no target.
	r.Targets, r.Featureless, r.Ceilings.NginxProxyHalf = nil, nil, nil
	r.judge()
	if _, ok := targetMet(t, r.Targets, "GET /profile vs the featureless"); ok {
		t.Error("a run without the reference has its target")
	}
	var md strings.Builder
	r.Markdown(&md)
	if strings.Contains(md.String(), "featureless") || strings.Contains(md.String(), "same load") {
		t.Errorf("a run without the references shows them:\n%s", md.String())
	}
	doc, err := replaceBetween("intro\n"+readmeStart+"\nold\n"+readmeEnd+"\nrest\n", "new\n")
	if err != nil || doc != "intro\n"+readmeStart+"\nnew\n"+readmeEnd+"\nrest\n" {
		t.Errorf("replaceBetween = %q, %v", doc, err)
	}
	if _, err := replaceBetween("no markers", "x"); err == nil {
		t.Error("replaceBetween without markers: got no error")
	}
}

// TestTargetsRestOnValidRuns: a target is met only by loadtest runs with
// no errors that reached the rate they were asked and passed their
// thresholds; the target's result says which run was not, and why, and
// the rows of the runs show their errors and shortfall.
func TestTargetsRestOnValidRuns(t *testing.T) {
	good := func() *Results {
		r := &Results{Settings: Settings{Replicas: 3, Workers: 64}}
		r.Profile.Half = Figure{Rate: 10000, Asked: 10000, Requests: 100000, Latency: Latency{P99: 4}}
		r.Storm = Storm{Reads: Figure{Rate: 10000, Asked: 10000, Requests: 100000, Latency: Latency{P99: 6}}, P99Ratio: 1.5}
		r.Sessions = Sessions{SmallCount: 1000, MemoryCount: 100000, LargeCount: 1000000,
			LookupSmall: Figure{Requests: 1000, Latency: Latency{P50: 1}}, LookupLarge: Figure{Requests: 1000, Latency: Latency{P50: 1.05}}}
		return r
	}
	tests := []struct {
		name    string
		spoil   func(r *Results)
		unmet   map[string]string // target name prefix → text its result has
		rowText string            // in the Markdown's rows
	}{
		{"Valid", func(*Results) {}, nil, "p99.9 0.00 ms; 0 errors | |"},
		{"HalfWithErrors", func(r *Results) { r.Profile.Half.Errors = 12 },
			map[string]string{"p99 at": "4.00 ms at 10000 req/s; 12 errors", "read p99": "quiet reads: 12 errors"}, "p99.9 0.00 ms; 12 errors | |"},
		{"HalfShortOfTheRate", func(r *Results) { r.Profile.Half.Shortfall, r.Profile.Half.Rate = true, 8000 },
			map[string]string{"p99 at": "4.00 ms at 8000 req/s; short of the asked rate (8000 of 10000 req/s)", "read p99": "quiet reads: short of the asked rate"}, "8000 of 10000 req/s asked, p50 0.00 ms, p99 4.00 ms, p99.9 0.00 ms; 0 errors, short of the asked rate | |"},
		{"HalfFailed", func(r *Results) { r.Profile.Half.Failed = "thresholds breached: error rate 2% > 1%" },
			map[string]string{"p99 at": "loadtest failed: thresholds breached: error rate 2% > 1%", "read p99": "quiet reads: loadtest failed"}, "0 errors, loadtest failed its thresholds"},
		// A reference of the same load that had errors is named as such
		// beside the target, which rests on GET /profile's run alone.
		{"ReferenceWithErrors", func(r *Results) {
			r.Featureless = &Reference{Half: &Figure{Rate: 10000, Asked: 10000, Errors: 5, Latency: Latency{P99: 3.5}}}
		}, nil, "same load: the featureless handler 3.50 ms (5 errors) | yes |"},
		{"StormReadsWithAnError", func(r *Results) { r.Storm.Reads.Errors = 1 },
			map[string]string{"read p99": "1.5× (6.00 vs 4.00 ms); reads beside the storm: 1 error"}, "(1.5× quiet); 1 error; logins"},
		{"LargeLookupWithErrors", func(r *Results) { r.Sessions.LookupLarge.Errors = 3 },
			map[string]string{"lookup p50": "lookup among 1000000: 3 errors"}, "| lookup among 1000000 sessions | 0 req/s, p50 1.050 ms, p99 0.00 ms; 3 errors | |"},
		{"SmallLookupShort", func(r *Results) { r.Sessions.LookupSmall.Shortfall = true },
			map[string]string{"lookup p50": "lookup among 1000: short of the asked rate"}, "p99 0.00 ms; 0 errors, short of the asked rate | |"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := good()
			tc.spoil(r)
			r.judge()
			for _, prefix := range []string{"p99 at", "read p99", "lookup p50"} {
				want, unmet := tc.unmet[prefix]
				for _, tg := range r.Targets {
					if !strings.HasPrefix(tg.Name, prefix) {
						continue
					}
					if tg.Met == unmet || !strings.Contains(tg.Result, want) {
						t.Errorf("target %q: met %v, result %q; want met %v and a result with %q", tg.Name, tg.Met, tg.Result, !unmet, want)
					}
				}
			}
			wantMarkdown(t, r, tc.rowText)
		})
	}
}

// TestCheckRun: wrong answers end the benchmark; a run that breached its
// thresholds is kept, with loadtest's own words for why, and its errors
// and shortfall reach the figure.
func TestCheckRun(t *testing.T) {
	exit1 := errors.New("exit status 1")
	tests := []struct {
		name       string
		rep        loadReport
		waitErr    error
		tail       []string
		wantErr    bool
		wantFailed string
	}{
		{"Passed", loadReport{Requests: 10}, nil, []string{"set-up done"}, false, ""},
		{"Breached", loadReport{Requests: 10, Errors: 2, Shortfall: true}, exit1,
			[]string{"WARNING: achieved 80 req/s", "loadtest: thresholds breached: error rate 20.00% > 1.00%"}, false, "thresholds breached: error rate 20.00% > 1.00%"},
		{"FailedWithoutAWord", loadReport{Requests: 10}, exit1, nil, false, "exit status 1"},
		{"Wrong", loadReport{Requests: 10, Wrong: 1}, exit1, nil, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := tc.rep
			err := checkRun("x", &rep, tc.waitErr, tc.tail)
			if (err != nil) != tc.wantErr || rep.Failed != tc.wantFailed {
				t.Fatalf("checkRun = %v, Failed %q; want an error %v, Failed %q", err, rep.Failed, tc.wantErr, tc.wantFailed)
			}
			if tc.wantErr {
				return
			}
			f := figure(&rep)
			if f.Errors != rep.Errors || f.Shortfall != rep.Shortfall || f.Failed != tc.wantFailed {
				t.Errorf("figure = %+v, want the report's errors, shortfall and failure", f)
			}
			js, _ := json.Marshal(f)
			if rep.Shortfall && !strings.Contains(string(js), `"shortfall":true`) {
				t.Errorf("the figure's JSON %s does not record the shortfall", js)
			}
		})
	}
}

// TestJourneyUsers: the users of mixed and churn are few enough that each
// sends at least one whole journey (1.25 of them) in the run, and at least
// one; with bench's earlier 200 users, mixed at 100 req/s for 10s gave
// each 5 of its 12 steps and no logout.
func TestJourneyUsers(t *testing.T) {
	tests := []struct {
		scenario string
		rate     int
		d        time.Duration
		want     int
	}{
		{"mixed", 100, 10 * time.Second, 66},  // 12 steps: 1000 / 15
		{"churn", 100, 10 * time.Second, 160}, // 5 steps: 1000 / 6.25
		{"mixed", 100, 2 * time.Minute, 800},
		{"mixed", 1, time.Second, 1},
		{"churn", 10000, 2 * time.Minute, maxJourneyUsers},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s-%d-%s", tc.scenario, tc.rate, tc.d), func(t *testing.T) {
			j := scenario.DefaultJourney(tc.scenario)
			got := journeyUsers(tc.rate, tc.d, j)
			if got != tc.want {
				t.Errorf("journeyUsers = %d, want %d", got, tc.want)
			}
			perUser := float64(tc.rate) * tc.d.Seconds() / float64(got)
			if steps := len(j.Plan()); got > 1 && perUser < float64(steps) {
				t.Errorf("%d users get %.1f requests each, fewer than the journey's %d steps", got, perUser, steps)
			}
		})
	}
}

// TestJourneyRowSaysWhenNoSessionEnded: a journey run whose kinds have no
// logout finished no session, and its row says so.
func TestJourneyRowSaysWhenNoSessionEnded(t *testing.T) {
	r := &Results{Journeys: []Journey{
		{Scenario: "mixed", Users: 200, Kinds: []KindFigure{{Kind: "login"}, {Kind: "profile"}}},
		{Scenario: "churn", Users: 160, Kinds: []KindFigure{{Kind: "login"}, {Kind: "profile"}, {Kind: "logout"}}},
	}}
	wantMarkdown(t, r,
		"| `mixed` at 0 req/s (open model, 200 users) | login p99 0.0 ms, profile p99 0.0 ms; 0 errors; no session reached its logout | |",
		"| `churn` at 0 req/s (open model, 160 users) | login p99 0.0 ms, profile p99 0.0 ms, logout p99 0.0 ms; 0 errors | |",
	)
}

// targetMet finds the one target whose name starts with prefix.
func targetMet(t *testing.T, targets []Target, prefix string) (met, ok bool) {
	t.Helper()
	for _, tg := range targets {
		if strings.HasPrefix(tg.Name, prefix) {
			if ok {
				t.Errorf("more than one target starts with %q", prefix)
			}
			met, ok = tg.Met, true
		}
	}
	return met, ok
}

func TestCPUPerRequest(t *testing.T) {
	before := counters{upstreamCPU: 10, nginxCPU: 5, redisCPU: 1}
	after := counters{upstreamCPU: 13.5, nginxCPU: 7, redisCPU: 1.7}
	up, ngx, rds := cpuPerRequest(before, after, 100000)
	if math.Abs(up-35) > 1e-9 || math.Abs(ngx-20) > 1e-9 || math.Abs(rds-7) > 1e-9 {
		t.Errorf("cpuPerRequest = %g, %g, %g µs; want 35, 20, 7", up, ngx, rds)
	}
	if up, ngx, rds := cpuPerRequest(before, after, 0); up != 0 || ngx != 0 || rds != 0 {
		t.Errorf("cpuPerRequest of no requests = %g, %g, %g; want zeros", up, ngx, rds)
	}
}

// TestStopSome stops some servers before the others, as the featureless
// reference is stopped after its step: they are gone, the others still
// run, and stopAll ends the rest without waiting on the stopped ones.
func TestStopSome(t *testing.T) {
	ps := &procs{dir: t.TempDir()}
	defer ps.stopAll()
	var list []*proc
	for _, name := range []string{"a", "b", "c"} {
		p, err := ps.start(name, nil, "sleep", "60")
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, p)
	}
	ps.stop(list[0], list[2])
	if len(ps.list) != 1 || ps.list[0] != list[1] {
		t.Fatalf("after stopping a and c, procs are %v, want b", ps.list)
	}
	if err := ps.exited(); err != nil {
		t.Errorf("exited after stopping some: %v", err)
	}
	if _, err := cpuSeconds(list[1].pid()); err != nil {
		t.Errorf("b is not running: %v", err)
	}
	done := make(chan struct{})
	go func() { ps.stopAll(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stopAll did not return")
	}
}

func TestParseWrk(t *testing.T) {
	out := "Running 5s test @ http://127.0.0.1:1/profile\n  1 threads and 64 connections\n" +
		`{"requests":50000,"durationUs":5000000,"connect":0,"read":1,"write":0,"status":2,"timeout":0,"p50":1500,"p90":3000,"p99":9000,"p999":12000,"max":20000}` + "\n"
	got, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	want := Figure{Rate: 10000, Requests: 50000, Errors: 3, Latency: Latency{P50: 1.5, P90: 3, P99: 9, P999: 12, Max: 20}}
	if got != want {
		t.Errorf("parseWrk: got %+v, want %+v", got, want)
	}
	for _, bad := range []string{"", "no summary\n", `{"requests":1,"durationUs":0}`, `{"requests":`} {
		if _, err := parseWrk(bad); err == nil {
			t.Errorf("parseWrk(%q): got no error", bad)
		}
	}
}

// TestLookupWithinTenPercent: the lookup target is met when the p50 among
// many sessions is within 10% of the p50 among few, either way: a large
// drop is as far from "within 10%" as a rise.
func TestLookupWithinTenPercent(t *testing.T) {
	tests := []struct {
		large float64 // p50 among many, ms; among few it is 1
		met   bool
	}{
		{1, true}, {1.05, true}, {1.10, true}, {0.95, true}, {0.90, true},
		{1.11, false}, {0.89, false}, {0.79, false}, {0, false},
	}
	for _, tc := range tests {
		r := &Results{Sessions: Sessions{SmallCount: 1000, LargeCount: 1000000,
			LookupSmall: Figure{Requests: 1, Latency: Latency{P50: 1}}, LookupLarge: Figure{Requests: 1, Latency: Latency{P50: tc.large}}}}
		r.judge()
		if got, ok := targetMet(t, r.Targets, "lookup p50"); !ok || got != tc.met {
			t.Errorf("lookup p50 %.2f vs 1 ms: met %v (present %v), want %v", tc.large, got, ok, tc.met)
		}
	}
}

// TestLabelsSayWhatWasMeasured: the half rate is loadtest's own maximum
// (not wrk's), and the memory per session holds at the clones' sessions
// per user.
func TestLabelsSayWhatWasMeasured(t *testing.T) {
	r := &Results{Sessions: Sessions{MemoryCount: 100000, BytesPerSession: 800}}
	r.judge()
	wantMarkdown(t, r,
		"| p99 at half the rate loadtest reached (open model) | < 5 ms |",
		"| reads at half the rate `loadtest` reached beside a login storm |",
		"| Redis memory per live session at 100000 sessions, 100 per user | 800 bytes | |",
		"| Redis memory per live session at 100000 sessions, 100 per user | < 300 bytes | 800 bytes | no |",
	)
}

// wantMarkdown checks that r's Markdown holds every one of rows.
func wantMarkdown(t *testing.T, r *Results, rows ...string) {
	t.Helper()
	var md strings.Builder
	r.Markdown(&md)
	for _, row := range rows {
		if !strings.Contains(md.String(), row) {
			t.Errorf("Markdown lacks %q:\n%s", row, md.String())
		}
	}
}
