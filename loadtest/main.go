// Command loadtest drives the session API over HTTP only, as a client would:
// it registers and logs in a few users, then fires GET /profile (the hot
// path) at a fixed rate, or as fast as it can, for a bounded time and number
// of requests, and reports latency percentiles, throughput, status codes and
// how the load spread over the replicas (the X-Instance header).
//
// It refuses any target that is not on the loopback interface: it is a tool
// for measuring a stack on this machine, not for hitting someone else's.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// Upper bounds that keep every run finite whatever the flags say.
const (
	maxDuration = 5 * time.Minute
	maxRequests = 5_000_000
)

type options struct {
	target      string
	path        string
	rate        int
	duration    time.Duration
	maxRequests uint64
	users       int
	workers     uint64
	connections int
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.target, "target", "http://127.0.0.1:8080", "base URL of the API (nginx or one replica); loopback only")
	fs.StringVar(&o.path, "path", "/profile", "authenticated GET route to load")
	fs.IntVar(&o.rate, "rate", 0, "requests per second; 0 means as fast as the workers go")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to attack (at most 5m)")
	fs.Uint64Var(&o.maxRequests, "max-requests", 1_000_000, "stop after this many requests")
	fs.IntVar(&o.users, "users", 8, "users to register and log in first (each login counts against the per-IP limit)")
	fs.Uint64Var(&o.workers, "workers", 32, "concurrent workers")
	fs.IntVar(&o.connections, "connections", 64, "idle keep-alive connections per host")
	if err := fs.Parse(args[1:]); err != nil {
		return o, err
	}
	switch {
	case o.duration <= 0 || o.duration > maxDuration:
		return o, fmt.Errorf("-duration must be in (0, %s]", maxDuration)
	case o.maxRequests == 0 || o.maxRequests > maxRequests:
		return o, fmt.Errorf("-max-requests must be in [1, %d]", maxRequests)
	case o.users < 1 || o.users > 100:
		return o, errors.New("-users must be in [1, 100]")
	case o.rate < 0:
		return o, errors.New("-rate must not be negative")
	case !strings.HasPrefix(o.path, "/"):
		return o, errors.New("-path must start with /")
	}
	return o, checkLoopback(o.target)
}

// checkLoopback refuses targets outside 127.0.0.0/8 and ::1.
func checkLoopback(target string) error {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-target %q is not a URL", target)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-target %q is not a loopback address", target)
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 10 * time.Second}
	tokens, err := loginUsers(ctx, client, o.target, o.users)
	if err != nil {
		return err
	}

	targets := make([]vegeta.Target, len(tokens))
	for i, tok := range tokens {
		targets[i] = vegeta.Target{
			Method: http.MethodGet,
			URL:    strings.TrimRight(o.target, "/") + o.path,
			Header: http.Header{"X-Session-Id": {tok}},
		}
	}
	attacker := vegeta.NewAttacker(
		vegeta.Workers(o.workers),
		vegeta.MaxWorkers(o.workers),
		vegeta.Connections(o.connections),
		vegeta.KeepAlive(true),
		vegeta.Timeout(10*time.Second),
		vegeta.MaxBody(4096),
	)
	// A frequency of 0 is vegeta's "as fast as the workers go"; MaxWorkers
	// bounds the concurrency then.
	pacer := vegeta.ConstantPacer{Freq: o.rate, Per: time.Second}
	var (
		metrics   vegeta.Metrics
		instances = map[string]uint64{}
		seen      uint64
	)
	results := attacker.Attack(vegeta.NewStaticTargeter(targets...), pacer, o.duration, "profile")
	interrupted := ctx.Done()
	for {
		select {
		case <-interrupted:
			// Stop once; the results of requests in flight still arrive.
			attacker.Stop()
			interrupted = nil
		case r, ok := <-results:
			if !ok {
				metrics.Close()
				return report(stdout, o, &metrics, instances)
			}
			metrics.Add(r)
			if id := r.Headers.Get("X-Instance"); id != "" {
				instances[id]++
			}
			if seen++; seen == o.maxRequests {
				attacker.Stop()
			}
		}
	}
}

// loginUsers logs in n load-test users, registering those that do not exist
// yet, and returns their tokens. The names are stable, so repeated runs
// reuse the accounts and spend only logins against the per-IP limit; when a
// limit answers 429 it waits the Retry-After it was given, within a bound.
func loginUsers(ctx context.Context, client *http.Client, target string, n int) ([]string, error) {
	const password = "load-test-password"
	deadline := time.Now().Add(2 * time.Minute)
	tokens := make([]string, 0, n)
	for i := 0; i < n; i++ {
		creds := map[string]string{"username": fmt.Sprintf("loadtest-%d", i), "password": password}
		if _, err := postJSON(ctx, client, deadline, target+"/auth/register", creds, http.StatusCreated, http.StatusConflict); err != nil {
			return nil, fmt.Errorf("registering: %w", err)
		}
		body, err := postJSON(ctx, client, deadline, target+"/auth/login", creds, http.StatusOK)
		if err != nil {
			return nil, fmt.Errorf("logging in: %w", err)
		}
		var login struct {
			SessionID string `json:"sessionId"`
		}
		if err := json.Unmarshal(body, &login); err != nil || login.SessionID == "" {
			return nil, fmt.Errorf("logging in: no sessionId in %q", body)
		}
		tokens = append(tokens, login.SessionID)
	}
	return tokens, nil
}

// postJSON posts v and returns the body of an answer with one of the wanted
// statuses, waiting out 429s until deadline.
func postJSON(ctx context.Context, client *http.Client, deadline time.Time, url string, v any, want ...int) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if slices.Contains(want, resp.StatusCode) {
			return body, nil
		}
		wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		if resp.StatusCode != http.StatusTooManyRequests || wait < 1 || time.Now().Add(time.Duration(wait)*time.Second).After(deadline) {
			return nil, fmt.Errorf("POST %s: got status %d, want %v: %s", url, resp.StatusCode, want, body)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(wait) * time.Second):
		}
	}
}

func report(w io.Writer, o options, m *vegeta.Metrics, instances map[string]uint64) error {
	mode := fmt.Sprintf("%d req/s", o.rate)
	if o.rate == 0 {
		mode = fmt.Sprintf("max rate, %d workers", o.workers)
	}
	fmt.Fprintf(w, "GET %s on %s, %s, %s, %d users\n\n", o.path, o.target, mode, o.duration, o.users)
	if err := vegeta.NewTextReporter(m).Report(w); err != nil {
		return err
	}
	ids := make([]string, 0, len(instances))
	for id := range instances {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	fmt.Fprintln(w, "\nResponses by replica (X-Instance):")
	for _, id := range ids {
		fmt.Fprintf(w, "  %-20s %d\n", id, instances[id])
	}
	if m.Success < 0.999 {
		return fmt.Errorf("success ratio %.4f is below 0.999", m.Success)
	}
	return nil
}
