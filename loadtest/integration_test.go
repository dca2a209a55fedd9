package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"redis-session-app/loadtest/internal/poll"
)

// freePort asks the kernel for a loopback port that is free now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startService runs a real redis-server and one real replica, built from
// ../services/api, on loopback, and returns the replica's base URL. env
// (NAME=VALUE) overrides the replica's settings, such as its login limits.
func startService(t *testing.T, env ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts redis-server and the API")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed (make deps)")
	}
	dir := t.TempDir()
	api := filepath.Join(dir, "api")
	build := exec.Command("go", "build", "-o", api, "./cmd/api")
	build.Dir = "../services/api"
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the API: %v: %s", err, out)
	}
	redisPort, apiPort := freePort(t), freePort(t)
	start := func(name string, env []string, path string, args ...string) {
		cmd := exec.Command(path, args...)
		cmd.Env = append(os.Environ(), env...)
		logf, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			logf.Close()
		})
	}
	start("redis", nil, "redis-server", "--port", fmt.Sprint(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	start("api", append([]string{
		fmt.Sprintf("PORT=%d", apiPort), fmt.Sprintf("REDIS_ADDR=127.0.0.1:%d", redisPort), "INSTANCE_ID=it-1",
		"COOKIE_SECURE=false", "LOG_LEVEL=warn", "LOGIN_LIMIT_PER_USER=100000/s", "LOGIN_LIMIT_PER_IP=100000/s",
	}, env...), api, "-host", "127.0.0.1")
	base := fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	err := poll.Until(context.Background(), 20*time.Second, 50*time.Millisecond, func() error {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /readyz: status %d", resp.StatusCode)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the replica not ready within 20s: %v", err)
	}
	return base
}

// jsonReport is the part of the JSON report the tests read.
type jsonReport struct {
	Requests     uint64                      `json:"requests"`
	Errors       uint64                      `json:"errors"`
	Wrong        uint64                      `json:"wrong"`
	AchievedRate float64                     `json:"achievedRate"`
	AskedRate    *float64                    `json:"askedRate"`
	Elapsed      float64                     `json:"elapsedSeconds"`
	Shortfall    bool                        `json:"shortfall"`
	LateSends    uint64                      `json:"lateSends"`
	UserWaits    uint64                      `json:"userWaits"`
	ErrorDetails []struct{ Detail string }   `json:"errorDetails"`
	Kinds        []struct{ Kind string }     `json:"kinds"`
	Instances    []struct{ Instance string } `json:"instances"`
}

func runTool(t *testing.T, args ...string) (jsonReport, string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report.json")
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := run(ctx, append([]string{"loadtest", "-json", path, "-progress", "0"}, args...), &stdout, &stderr)
	var rep jsonReport
	if b, rerr := os.ReadFile(path); rerr == nil {
		if jerr := json.Unmarshal(b, &rep); jerr != nil {
			t.Fatalf("JSON report: %v", jerr)
		}
	}
	return rep, stdout.String() + stderr.String(), err
}

// TestScenariosAgainstTheRealService runs every scenario briefly against a
// real replica, with a target written with a trailing slash, and wants
// every answer right.
func TestScenariosAgainstTheRealService(t *testing.T) {
	base := startService(t) + "/"
	tests := []struct {
		scenario string
		args     []string
		kinds    []string
	}{
		{"read", []string{"-rate", "200", "-duration", "1s", "-users", "5"}, []string{"profile"}},
		{"read", []string{"-workers", "4", "-max-requests", "300", "-users", "3"}, []string{"profile"}},
		{"login", []string{"-rate", "10", "-duration", "1s", "-users", "3"}, []string{"login"}},
		{"mixed", []string{"-rate", "40", "-duration", "2s", "-users", "10", "-reads", "3"}, []string{"login", "profile", "sessions", "refresh", "logout"}},
		{"churn", []string{"-stages", "0s@40,2s@40,1s@0", "-users", "5", "-reads", "1"}, []string{"login", "profile", "logout"}},
	}
	for _, tc := range tests {
		t.Run(tc.scenario+" "+strings.Join(tc.args, " "), func(t *testing.T) {
			rep, out, err := runTool(t, append([]string{"-target", base, "-scenario", tc.scenario}, tc.args...)...)
			if err != nil {
				t.Fatalf("run: %v\n%s", err, out)
			}
			if rep.Requests == 0 || rep.Errors != 0 || rep.Wrong != 0 {
				t.Errorf("got %d requests, %d errors, %d wrong; want some, none, none\n%s", rep.Requests, rep.Errors, rep.Wrong, out)
			}
			var kinds []string
			for _, k := range rep.Kinds {
				kinds = append(kinds, k.Kind)
			}
			if strings.Join(kinds, ",") != strings.Join(tc.kinds, ",") {
				t.Errorf("got kinds %v, want %v", kinds, tc.kinds)
			}
			if len(rep.Instances) != 1 || rep.Instances[0].Instance != "it-1" {
				t.Errorf("got instances %+v, want it-1 alone", rep.Instances)
			}
		})
	}
	t.Run("MaxRequestsBoundsTheRun", func(t *testing.T) {
		rep, out, err := runTool(t, "-target", base, "-rate", "1000", "-duration", "5s", "-max-requests", "100", "-users", "2")
		if err != nil || rep.Requests != 100 {
			t.Errorf("got %d requests, err %v, want exactly 100\n%s", rep.Requests, err, out)
		}
	})
	// An account the load test did not make, with another password,
	// stops the set-up of every scenario that logs in before a request
	// is timed; one it made before is reused.
	t.Run("ExistingAccountWithAnotherPassword", func(t *testing.T) {
		resp, err := http.Post(base+"auth/register", "application/json", strings.NewReader(`{"username":"taken-0","password":"someone-elses-password"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("registering taken-0: status %d, want 201", resp.StatusCode)
		}
		for _, sc := range []string{"read", "login", "mixed", "churn"} {
			_, out, err := runTool(t, "-target", base, "-scenario", sc, "-users", "2", "-user-prefix", "taken-", "-rate", "10", "-duration", "1s")
			if err == nil || !strings.Contains(err.Error(), "choose another -user-prefix") {
				t.Errorf("%s: got %v, want the set-up to fail with a hint\n%s", sc, err, out)
			}
			if strings.Contains(out, "scenario "+sc+" against") {
				t.Errorf("%s: the timed phase ran\n%s", sc, out)
			}
		}
	})
	t.Run("ExistingAccountsReused", func(t *testing.T) {
		args := []string{"-target", base, "-scenario", "churn", "-users", "2", "-user-prefix", "reused-", "-rate", "20", "-duration", "1s"}
		for _, want := range []string{"2 users registered", "2 existed (2 took the password"} {
			rep, out, err := runTool(t, args...)
			if err != nil || rep.Errors != 0 || rep.Wrong != 0 || !strings.Contains(out, want) {
				t.Errorf("got %v, %d errors, %d wrong; want a clean run whose set-up says %q\n%s", err, rep.Errors, rep.Wrong, want, out)
			}
		}
	})
	t.Run("ThresholdBreachFails", func(t *testing.T) {
		_, out, err := runTool(t, "-target", base, "-rate", "100", "-duration", "1s", "-users", "2", "-max-p99", "profile=1ns")
		if err == nil || !strings.Contains(err.Error(), "p99 profile") {
			t.Errorf("got %v, want a breached p99 threshold\n%s", err, out)
		}
	})
}

// TestLoginLimitsAreNamed: against a replica that allows two logins a
// minute per account, two users' twenty logins are mostly answered 429,
// and the report names the limits that refused them.
func TestLoginLimitsAreNamed(t *testing.T) {
	base := startService(t, "LOGIN_LIMIT_PER_USER=2/m")
	_, out, err := runTool(t, "-target", base, "-scenario", "login", "-users", "2", "-rate", "20", "-duration", "1s")
	if err == nil || !strings.Contains(err.Error(), "error rate") {
		t.Errorf("got %v, want the error rate breached by the refused logins\n%s", err, out)
	}
	for _, want := range []string{"logins were answered 429", "LOGIN_LIMIT_PER_USER", "LOGIN_LIMIT_PER_IP"} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q\n%s", want, out)
		}
	}
}

// TestWrongAnswersFailTheRun points the tool at a server that serves
// everyone the same profile: every read is wrong, and the run fails even
// with every other threshold off.
func TestWrongAnswersFailTheRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Instance", "liar")
		switch r.URL.Path {
		case "/auth/register":
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, `{"username":"x"}`)
		case "/auth/login":
			fmt.Fprint(w, `{"message":"Logged in","sessionId":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`)
		case "/profile":
			fmt.Fprint(w, `{"username":"loadtest-read-0"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	rep, out, err := runTool(t, "-target", srv.URL, "-users", "3", "-rate", "60", "-duration", "1s", "-max-error-rate", "1")
	if err == nil || !strings.Contains(err.Error(), "wrong answers") {
		t.Errorf("got %v, want the run failed for wrong answers\n%s", err, out)
	}
	// Users 1 and 2 get user 0's profile: two reads in three are wrong.
	if rep.Wrong == 0 || rep.Wrong == rep.Requests {
		t.Errorf("got %d wrong of %d, want user 0's reads right and the others wrong", rep.Wrong, rep.Requests)
	}
	if !strings.Contains(out, "profile of another user returned") {
		t.Errorf("report does not say what was wrong:\n%s", out)
	}
}

// TestLatencyCountsFromWhenDue stalls one request for a second while
// -max-in-flight 1 lets no other leave: the arrivals due meanwhile wait,
// and their wait must show in the latency (it is the users'), not only
// the stalled request's own second.
func TestLatencyCountsFromWhenDue(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 50 {
			time.Sleep(time.Second)
		}
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()
	_, out, err := runTool(t, "-target", srv.URL, "-scenario", "get", "-path", "/slow",
		"-rate", "200", "-duration", "2s", "-max-in-flight", "1", "-max-p99", "get=500ms")
	if err == nil || !strings.Contains(err.Error(), "p99 get") {
		t.Errorf("got %v, want the p99 threshold breached by the requests that waited\n%s", err, out)
	}
	if !strings.Contains(out, "latencies count from when requests were due") {
		t.Errorf("the report does not warn that requests left late:\n%s", out)
	}
}

// TestInterruptedRunReportsAndFails interrupts a 10s run after half a
// second: it stops at once, writes its report and fails, saying why.
func TestInterruptedRunReportsAndFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "report.json")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	var out bytes.Buffer
	began := time.Now()
	err := run(ctx, []string{"loadtest", "-target", srv.URL, "-scenario", "get", "-rate", "100", "-duration", "10s",
		"-progress", "0", "-json", path}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("got %v, want the run to fail as interrupted\n%s", err, out.String())
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("took %s after an interrupt at 0.5s", took)
	}
	var rep struct {
		Requests       uint64  `json:"requests"`
		ElapsedSeconds float64 `json:"elapsedSeconds"`
		Interrupted    bool    `json:"interrupted"`
		Thresholds     []struct {
			Name string `json:"name"`
			OK   bool   `json:"ok"`
		} `json:"thresholds"`
	}
	b, rerr := os.ReadFile(path)
	if rerr != nil || json.Unmarshal(b, &rep) != nil || rep.Requests == 0 || rep.ElapsedSeconds > 1 {
		t.Errorf("report %s (%v), want the requests of about half a second", b, rerr)
	}
	// The report itself, which a CI job may keep, says the run failed.
	if !rep.Interrupted || len(rep.Thresholds) == 0 || rep.Thresholds[0].Name != "run" || rep.Thresholds[0].OK {
		t.Errorf("report %s, want it marked interrupted with a failed run check", b)
	}
	if !strings.Contains(out.String(), "BREACHED run: interrupted after") {
		t.Errorf("the terminal report does not say the run was interrupted:\n%s", out.String())
	}
}

// TestInterruptAfterSendingPasses: an interrupt that comes once every
// request has been sent, while the last answers are awaited, leaves a
// whole run, which passes.
func TestInterruptAfterSendingPasses(t *testing.T) {
	const want = 10 // -rate 20 for 500ms
	var arrived atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		// Slow answers: the interrupt comes while they are awaited.
		time.Sleep(1500 * time.Millisecond)
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The interrupt comes once every request has arrived, not at a fixed
	// time that the sending of a slow machine could outlast.
	go func() {
		_ = poll.Until(ctx, time.Minute, 5*time.Millisecond, func() error {
			if n := arrived.Load(); n < want {
				return fmt.Errorf("%d of %d requests arrived", n, want)
			}
			return nil
		})
		cancel()
	}()
	var out bytes.Buffer
	err := run(ctx, []string{"loadtest", "-target", srv.URL, "-scenario", "get", "-rate", "20", "-duration", "500ms",
		"-timeout", "5s", "-progress", "0"}, &out, &out)
	if ctx.Err() == nil {
		t.Fatalf("the run ended after %d of %d requests, before any interrupt\n%s", arrived.Load(), want, out.String())
	}
	if err != nil {
		t.Errorf("got %v, want a pass: every request was sent before the interrupt\n%s", err, out.String())
	}
}

// TestSessionsFileUsersAreReported: the report counts the users the file
// held, not -users' default.
func TestSessionsFileUsersAreReported(t *testing.T) {
	names := map[string]string{} // token → username
	var file strings.Builder
	for i := range 3 {
		tok := fmt.Sprintf("%032d", i)
		names[tok] = fmt.Sprintf("bench-%d", i)
		fmt.Fprintf(&file, "%s %s\n", names[tok], tok)
	}
	path := filepath.Join(t.TempDir(), "sessions.txt")
	if err := os.WriteFile(path, []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"username":%q}`, names[r.Header.Get("X-Session-Id")])
	}))
	defer srv.Close()
	reportPath := filepath.Join(t.TempDir(), "report.json")
	var out bytes.Buffer
	err := run(context.Background(), []string{"loadtest", "-target", srv.URL, "-sessions-file", path, "-rate", "30", "-duration", "1s",
		"-progress", "0", "-json", reportPath}, &out, &out)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	var rep struct {
		Users int `json:"users"`
	}
	if b, err := os.ReadFile(reportPath); err != nil || json.Unmarshal(b, &rep) != nil || rep.Users != 3 {
		t.Errorf("report %s (%v): want 3 users", b, err)
	}
}

// TestDialerRefusesNonLoopback checks the second guard: whatever a name
// resolves to, the dialer refuses an address off loopback before it
// connects (no packet leaves; 192.0.2.1 is a documentation address).
func TestDialerRefusesNonLoopback(t *testing.T) {
	tr := newTransport(options{connections: 1})
	client := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	_, err := client.Get("http://192.0.2.1/")
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("got %v, want the dialer to refuse 192.0.2.1", err)
	}
}
