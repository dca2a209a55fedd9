package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"redis-session-app/services/api/internal/logbuf"
	"redis-session-app/services/api/internal/poll"
)

// env is the environment of one replica under test.
type env map[string]string

// baseEnv is what every replica under test gets unless a test overrides
// it: a port the kernel picks, no Secure cookie over plain HTTP, limits high
// enough that only the rate-limit tests meet them, and a quick shutdown.
func baseEnv(redisAddr, instance string) env {
	return env{
		"PORT":                 "0",
		"REDIS_ADDR":           redisAddr,
		"INSTANCE_ID":          instance,
		"COOKIE_SECURE":        "false",
		"LOGIN_LIMIT_PER_USER": "1000/s",
		"LOGIN_LIMIT_PER_IP":   "1000/s",
		// Some tests list sessions in a loop (polling for an expiry,
		// say) faster than the default 20/s.
		"SESSIONS_LIMIT_PER_USER": "1000/s",
		"SHUTDOWN_DELAY":          "0s",
		"SHUTDOWN_TIMEOUT":        "5s",
		"LOG_LEVEL":               "debug",
	}
}

// with returns a copy of e with the given key-value pairs set; an empty value
// removes the variable, so the replica falls back to its default.
func (e env) with(kv ...string) env {
	out := make(env, len(e)+len(kv)/2)
	for k, v := range e {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
			continue
		}
		out[kv[i]] = kv[i+1]
	}
	return out
}

func (e env) getenv(key string) string { return e[key] }

// replica is one run of the service, started by the test in a goroutine
// and reached over real HTTP on loopback.
type replica struct {
	id     string
	base   string // http://127.0.0.1:port
	addr   string
	logs   *logbuf.Buffer
	client *http.Client
	cancel context.CancelFunc
	done   chan error

	stopOnce sync.Once
	err      error
}

// stopTimeout bounds how long a replica may take to drain and return after
// its context ends.
const stopTimeout = 20 * time.Second

// startReplica boots run with e, waits until /healthz answers 200 and stops
// the replica when the test ends, failing the test if run then returns an
// error.
func startReplica(t testing.TB, e env) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{
		id:     e["INSTANCE_ID"],
		logs:   &logbuf.Buffer{},
		cancel: cancel,
		done:   make(chan error, 1),
		client: &http.Client{
			Timeout:       10 * time.Second,
			Transport:     &http.Transport{MaxIdleConnsPerHost: 16},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	args := []string{"api", "-host", "127.0.0.1"}
	go func() { r.done <- run(ctx, args, e.getenv, r.logs, io.Discard) }()
	t.Cleanup(func() {
		// A test that stopped the replica itself has checked the error.
		if err, first := r.halt(); first && err != nil {
			t.Errorf("replica %s: run returned %v, want nil", r.id, err)
		}
	})

	listening := poll.Until(10*time.Second, 5*time.Millisecond, func() bool {
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("replica %s: run returned %v before listening; logs:\n%s", r.id, err, r.logs)
		default:
		}
		r.addr = listenAddr(r.logs)
		return r.addr != ""
	})
	if !listening {
		t.Fatalf("replica %s: no \"listening\" log line within 10s; logs:\n%s", r.id, r.logs)
	}
	r.base = "http://" + r.addr
	poll.For(t, 10*time.Second, "/healthz to answer 200", func() bool {
		res, err := r.try(http.MethodGet, "/healthz", "", nil)
		return err == nil && res.status == http.StatusOK
	})
	return r
}

// stop ends the replica's context and waits for run to return; it returns
// run's error. Calling it again returns the same error.
func (r *replica) stop() error {
	err, _ := r.halt()
	return err
}

// halt is stop that also reports whether this call did the stopping.
func (r *replica) halt() (err error, first bool) {
	r.stopOnce.Do(func() {
		first = true
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(stopTimeout):
			r.err = errors.New("run did not return within " + stopTimeout.String())
		}
		r.client.CloseIdleConnections()
	})
	return r.err, first
}

// response is an HTTP response read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

// try sends one request; headers are key-value pairs.
func (r *replica) try(method, path, body string, headers []string) (response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, r.base+path, rd)
	if err != nil {
		return response{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	res, err := r.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: res.StatusCode, header: res.Header, body: b}, nil
}

// do sends one request and fails the test on a transport error or a
// response without this replica's X-Instance header.
func (r *replica) do(t testing.TB, method, path, body string, headers ...string) response {
	t.Helper()
	res, err := r.try(method, path, body, headers)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if got := res.header.Get("X-Instance"); got != r.id {
		t.Errorf("%s %s: X-Instance got %q, want %q", method, path, got, r.id)
	}
	return res
}

// register creates a user and fails the test unless it answers 201.
func (r *replica) register(t testing.TB, username, password string) {
	t.Helper()
	res := r.do(t, http.MethodPost, "/auth/register", credentials(username, password))
	wantStatus(t, res, http.StatusCreated)
}

// loginResponse is the body of a successful login or refresh.
type loginResponse struct {
	Message   string `json:"message"`
	SessionID string `json:"sessionId"`
	ExpiresAt string `json:"expiresAt"`
}

// login logs in and returns the token, failing the test unless it answers
// 200.
func (r *replica) login(t testing.TB, username, password string, headers ...string) string {
	t.Helper()
	res := r.do(t, http.MethodPost, "/auth/login", credentials(username, password), headers...)
	wantStatus(t, res, http.StatusOK)
	return decode[loginResponse](t, res).SessionID
}

// profile asks for the profile with the token in X-Session-Id.
func (r *replica) profile(t testing.TB, token string) response {
	t.Helper()
	return r.do(t, http.MethodGet, "/profile", "", "X-Session-Id", token)
}

// sessionView is one element of GET /auth/sessions.
type sessionView struct {
	ID         string `json:"id"`
	CreatedAt  string `json:"createdAt"`
	LastSeenAt string `json:"lastSeenAt"`
	ExpiresAt  string `json:"expiresAt"`
	UserAgent  string `json:"userAgent"`
	IP         string `json:"ip"`
	Current    bool   `json:"current"`
}

// sessions lists the sessions of the token's user, failing the test unless
// it answers 200.
func (r *replica) sessions(t testing.TB, token string) []sessionView {
	t.Helper()
	res := r.do(t, http.MethodGet, "/auth/sessions", "", "X-Session-Id", token)
	wantStatus(t, res, http.StatusOK)
	return decode[struct {
		Sessions []sessionView `json:"sessions"`
	}](t, res).Sessions
}

// current returns the element of list marked current.
func current(t testing.TB, list []sessionView) sessionView {
	t.Helper()
	for _, s := range list {
		if s.Current {
			return s
		}
	}
	t.Fatalf("no current session in %+v", list)
	return sessionView{}
}

func credentials(username, password string) string {
	b, _ := json.Marshal(map[string]string{"username": username, "password": password})
	return string(b)
}

func decode[T any](t testing.TB, res response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(res.body, &v); err != nil {
		t.Fatalf("decoding %s: %v", res.body, err)
	}
	return v
}

func wantStatus(t testing.TB, res response, want int) {
	t.Helper()
	if res.status != want {
		t.Fatalf("status got %d, want %d (body %s)", res.status, want, res.body)
	}
}

// wantJSON checks the status and that the body equals want as JSON.
func wantJSON(t testing.TB, res response, status int, want string) {
	t.Helper()
	wantStatus(t, res, status)
	var got, w any
	if err := json.Unmarshal(res.body, &got); err != nil {
		t.Fatalf("decoding body %s: %v", res.body, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("decoding want %s: %v", want, err)
	}
	if !reflect.DeepEqual(got, w) {
		t.Fatalf("body got %s, want %s", res.body, want)
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// listenAddr returns the address of the "listening" log line, or "".
func listenAddr(logs *logbuf.Buffer) string {
	for _, line := range logs.Lines() {
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
			return rec.Addr
		}
	}
	return ""
}
