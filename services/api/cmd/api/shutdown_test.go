package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"redis-session-app/services/api/internal/poll"
	"redis-session-app/services/api/internal/redistest"
)

// TestGracefulShutdown checks the drain the contract describes: /readyz
// fails at once, requests are still served for SHUTDOWN_DELAY, then run
// returns nil.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	// Long enough that the checks below fit in it on a loaded CI machine.
	const delay = 3 * time.Second
	rds := redistest.Start(t)
	r := startReplica(t, baseEnv(rds.Addr(), "drain").with("SHUTDOWN_DELAY", delay.String()))
	r.register(t, "drain", pw)
	tok := r.login(t, "drain", pw)
	wantStatus(t, r.do(t, http.MethodGet, "/readyz", ""), http.StatusOK)

	start := time.Now()
	r.cancel()
	// The flag is set by run's goroutine right after the context ends: poll
	// briefly rather than race it.
	poll.For(t, time.Second, "/readyz to answer 503", func() bool {
		return r.do(t, http.MethodGet, "/readyz", "").status == http.StatusServiceUnavailable
	})
	wantJSON(t, r.do(t, http.MethodGet, "/readyz", ""), http.StatusServiceUnavailable, `{"error":"Not ready"}`)
	wantJSON(t, r.do(t, http.MethodGet, "/healthz", ""), http.StatusOK, `{"status":"ok"}`)
	wantStatus(t, r.profile(t, tok), http.StatusOK)
	if served := time.Since(start); served >= delay {
		t.Fatalf("checks took %v, longer than the %v delay they had to fit in", served, delay)
	}

	if err := r.stop(); err != nil {
		t.Fatalf("run got %v, want nil", err)
	}
	if took := time.Since(start); took < delay {
		t.Errorf("run returned %v after cancel, want at least SHUTDOWN_DELAY %v", took, delay)
	}
}

// TestShutdownCutsOff holds a request in flight (its body never finishes)
// past SHUTDOWN_TIMEOUT: run must report the cut-off, which main turns into
// exit status 1, and log the request as a 503 (not the 400 of a body cut
// short, nor the 499 of a client that hung up).
func TestShutdownCutsOff(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	r := startReplica(t, baseEnv(rds.Addr(), "cutoff").with(
		"SHUTDOWN_DELAY", "300ms", "SHUTDOWN_TIMEOUT", "200ms"))

	conn, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A complete request first proves the server has accepted this
	// connection; the next one then stays in flight.
	fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	body := credentials("slow", pw)
	fmt.Fprintf(conn, "POST /auth/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		len(body), body[:5])

	start := time.Now()
	err = r.stop()
	if !errors.Is(err, errCutOff) || exitCode(err) != 1 {
		t.Fatalf("run got %v (exit %d), want the cut-off error and exit 1", err, exitCode(err))
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("run returned %v after cancel, want about SHUTDOWN_DELAY+SHUTDOWN_TIMEOUT", took)
	}
	// The request it cut off is the replica's failure, not its client's.
	if logs := r.logs.String(); !strings.Contains(logs, `"route":"/auth/login","status":503`) ||
		!strings.Contains(logs, `"error":"`) {
		t.Errorf("want the cut-off login logged with status 503 and its error; logs:\n%s", logs)
	}
}

// TestConfigErrors checks that a setting that cannot be parsed stops the
// replica at start with exit status 2 and a message naming the variable.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key, value string
	}{
		{"SESSION_IDLE_TIMEOUT", "abc"},
		{"SESSION_MAX_LIFETIME", "-1h"},
		{"SESSION_MAX_PER_USER", "many"},
		{"SESSION_MAX_PER_USER", "0"},
		{"PORT", "http"},
		{"REDIS_TIMEOUT", "soon"},
		{"LOGIN_LIMIT_PER_USER", "10/fortnight"},
		{"LOGIN_LIMIT_PER_IP", "x"},
		{"SESSIONS_LIMIT_PER_USER", "0/s"},
		{"TRUSTED_PROXIES", "not-an-ip"},
		{"COOKIE_SECURE", "yes"},
		{"SHUTDOWN_DELAY", "1"},
		{"SHUTDOWN_TIMEOUT", "later"},
		{"LOG_LEVEL", "loud"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			t.Parallel()
			e := baseEnv(closedAddr(t), "bad").with(tc.key, tc.value)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var stdout strings.Builder
			err := run(ctx, []string{"api", "-host", "127.0.0.1"}, e.getenv, &stdout, io.Discard)
			if got := exitCode(err); got != 2 {
				t.Fatalf("exit got %d (err %v), want 2", got, err)
			}
			if !strings.Contains(err.Error(), tc.key) {
				t.Errorf("error got %q, want it to name %s", err, tc.key)
			}
			if strings.Contains(stdout.String(), "listening") {
				t.Errorf("replica listened despite the bad setting")
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"OK", nil, 0},
		{"Failure", errors.New("listening: address in use"), 1},
		{"CutOff", fmt.Errorf("draining: %w", &exitError{code: exitFailure, err: errCutOff}), 1},
		{"Config", &exitError{code: exitConfig, err: errors.New("SESSION_IDLE_TIMEOUT: bad")}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := exitCode(tc.err); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

// TestShutdownLogsRequestsItCut: a request waiting on a frozen Redis when
// the shutdown timeout runs out is cut off; its handler returns only when
// its Redis call times out, after the server has closed, and the replica
// waits for it so that its 503 is logged before run returns.
func TestShutdownLogsRequestsItCut(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	r := startReplica(t, baseEnv(rds.Addr(), "cutlog").with(
		"REDIS_TIMEOUT", "1s", "SHUTDOWN_DELAY", "300ms", "SHUTDOWN_TIMEOUT", "200ms"))
	r.register(t, "cutlog", pw)
	tok := r.login(t, "cutlog", pw)

	rds.Pause()
	defer rds.Resume()
	done := make(chan error, 1)
	go func() {
		_, err := r.try(http.MethodGet, "/profile", "", []string{"X-Session-Id", tok})
		done <- err
	}()
	err := r.stop()
	if !errors.Is(err, errCutOff) {
		t.Fatalf("run got %v, want the cut-off error", err)
	}
	if err := <-done; err == nil {
		t.Error("the cut-off request got an answer, want its connection closed")
	}
	logs := r.logs.String()
	if !strings.Contains(logs, `"route":"/profile","status":503`) {
		t.Errorf("want the cut-off /profile logged with status 503; logs:\n%s", logs)
	}
	if !strings.Contains(logs, `"requests":1,"unlogged":0`) {
		t.Errorf(`want "shutdown cut requests off" to count 1 request cut and 0 unlogged; logs:\n%s`, logs)
	}
}

// TestShutdownWithNothingToCut: a new connection that has not sent a whole
// request keeps http.Server.Shutdown waiting until its timeout, but no
// handler runs: closing it cuts nothing off, so run returns nil (exit 0).
func TestShutdownWithNothingToCut(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	r := startReplica(t, baseEnv(rds.Addr(), "nocut").with(
		"SHUTDOWN_DELAY", "100ms", "SHUTDOWN_TIMEOUT", "200ms"))
	partial, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer partial.Close()
	fmt.Fprint(partial, "GET /prof") // never ends
	// The server accepts connections in order: once a request on a
	// later one is answered, it has accepted the partial one.
	later, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer later.Close()
	fmt.Fprint(later, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(later), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if err := r.stop(); err != nil {
		t.Fatalf("run got %v, want nil: nothing was cut off", err)
	}
	logs := r.logs.String()
	if strings.Contains(logs, "shutdown cut requests off") || !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("want a clean stop, no cut; logs:\n%s", logs)
	}
}
