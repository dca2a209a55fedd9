package main

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	var md strings.Builder
	r.Markdown(&md)
	for _, w := range []string{
		"| target | goal | this run | met |", "50% of the proxy ceiling", "| no |",
		"| reference: a featureless gin + go-redis handler (one `GET`, no log, no metrics), same nginx settings, 3 processes (wrk, 64 connections) | 22000 req/s, p50 2.50 ms, p99 8.00 ms | 55% of the proxy ceiling; `GET /profile` reached 0.91× its rate |",
		"| CPU per request of the featureless handler | its processes 28.0 µs, nginx 20.0 µs, Redis 7.0 µs; Redis commands 1.000 | |",
		"| GET /profile vs the featureless gin + go-redis handler, same run | rate ≥ the handler's | rate 0.91× (20000 vs 22000 req/s); CPU 1.25× (35.0 vs 28.0 µs) | no |",
		"| the featureless handler, the same load | 10000 of 10000 req/s asked, p50 0.50 ms, p99 3.50 ms, p99.9 6.00 ms | |",
		"| the proxy ceiling (`GET /` of the trivial upstream), the same load | 9990 of 10000 req/s asked, p50 0.25 ms, p99 1.25 ms, p99.9 2.00 ms | |",
		"| p99 at half the maximum rate (open model) | < 5 ms | 4.00 ms at 10000 req/s; same load: the featureless handler 3.50 ms, the proxy ceiling 1.25 ms | yes |",
	} {
		if !strings.Contains(md.String(), w) {
			t.Errorf("Markdown lacks %q:\n%s", w, md.String())
		}
	}

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
	md.Reset()
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
