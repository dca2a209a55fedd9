package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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

func TestMetricValue(t *testing.T) {
	text := "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n" +
		"# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12.34\nprocess_cpu_seconds_total_other 1\n"
	if v, ok := metricValue(text, "process_cpu_seconds_total"); !ok || v != 12.34 {
		t.Errorf("metricValue = %g, %v, want 12.34", v, ok)
	}
	if _, ok := metricValue(text, "absent"); ok {
		t.Error("metricValue found an absent metric")
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
	r.judge()
	met := map[string]bool{}
	for _, tg := range r.Targets {
		met[strings.Fields(tg.Name)[0]+" "+strings.Fields(tg.Name)[1]] = tg.Met
	}
	want := map[string]bool{
		"GET /profile": true, "replica CPU": true, "p99 at": true, "Redis commands": true,
		"Redis memory": false, "lookup p50": true, "read p99": false,
	}
	for k, v := range want {
		if got, ok := met[k]; !ok || got != v {
			t.Errorf("target %q met = %v (present %v), want %v; targets %+v", k, got, ok, v, r.Targets)
		}
	}
	var md strings.Builder
	r.Markdown(&md)
	for _, w := range []string{"| target | goal | this run | met |", "50% of the proxy ceiling", "| no |"} {
		if !strings.Contains(md.String(), w) {
			t.Errorf("Markdown lacks %q:\n%s", w, md.String())
		}
	}
	doc, err := replaceBetween("intro\n"+readmeStart+"\nold\n"+readmeEnd+"\nrest\n", "new\n")
	if err != nil || doc != "intro\n"+readmeStart+"\nnew\n"+readmeEnd+"\nrest\n" {
		t.Errorf("replaceBetween = %q, %v", doc, err)
	}
	if _, err := replaceBetween("no markers", "x"); err == nil {
		t.Error("replaceBetween without markers: got no error")
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
