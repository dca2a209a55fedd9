package scenario_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"redis-session-app/loadtest/internal/scenario"
)

// TestSetupWaitsOutRateLimits answers the first registration 429 with a
// Retry-After of one second: set-up waits that long, says so, and then
// registers and logs in every user.
func TestSetupWaitsOutRateLimits(t *testing.T) {
	var (
		mu      sync.Mutex
		limited bool
		logins  int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch r.URL.Path {
		case "/auth/register":
			if !limited {
				limited = true
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				fmt.Fprint(w, `{"error":"Too many requests"}`)
				return
			}
			w.WriteHeader(http.StatusCreated)
		case "/auth/login":
			logins++
			fmt.Fprintf(w, `{"sessionId":"%032d"}`, logins)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	var log bytes.Buffer
	s := &scenario.Setup{Client: srv.Client(), Endpoints: scenario.NewEndpoints(srv.URL + "/"), Parallel: 1,
		Deadline: time.Now().Add(time.Minute), Log: &log}
	users := []*scenario.User{scenario.NewUser("a", "pw-a-12345"), scenario.NewUser("b", "pw-b-12345")}
	rep, err := s.Run(context.Background(), users, true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Registered != 2 || rep.LoggedIn != 2 || rep.Waited < time.Second || rep.Waited > 1500*time.Millisecond {
		t.Errorf("got %+v, want 2 registered, 2 logged in, 1s waited", rep)
	}
	if users[0].Token == "" || users[0].Token == users[1].Token {
		t.Errorf("got tokens %q and %q, want two different ones", users[0].Token, users[1].Token)
	}
	if !strings.Contains(log.String(), "waiting 1s as Retry-After says") {
		t.Errorf("set-up did not say it waited: %q", log.String())
	}
}

// TestSetupWaitedIsWallTime limits both of two parallel registrations at
// once: they wait the same second, and set-up says it waited one, not two.
func TestSetupWaitedIsWallTime(t *testing.T) {
	var (
		mu      sync.Mutex
		limited int
	)
	both := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		limited++
		n := limited
		mu.Unlock()
		switch {
		case n == 2:
			close(both)
			fallthrough
		case n == 1:
			<-both // answer both 429s together
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			w.WriteHeader(http.StatusCreated)
		}
	}))
	defer srv.Close()
	s := &scenario.Setup{Client: srv.Client(), Endpoints: scenario.NewEndpoints(srv.URL), Parallel: 2, Deadline: time.Now().Add(time.Minute)}
	rep, err := s.Run(context.Background(), []*scenario.User{scenario.NewUser("a", "pw-a-12345"), scenario.NewUser("b", "pw-b-12345")}, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Waited < time.Second || rep.Waited > 1500*time.Millisecond {
		t.Errorf("waited %s, want about 1s: the two waits overlapped", rep.Waited)
	}
}

func TestSetupGivesUpPastTheDeadline(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	s := &scenario.Setup{Client: srv.Client(), Endpoints: scenario.NewEndpoints(srv.URL), Parallel: 2, Deadline: time.Now().Add(5 * time.Second)}
	_, err := s.Run(context.Background(), []*scenario.User{scenario.NewUser("a", "pw-a-12345")}, false)
	if err == nil || !strings.Contains(err.Error(), "past the set-up deadline") {
		t.Errorf("got %v, want an error naming the deadline", err)
	}
}

// TestSetupRetryAfterValues answers the first registration 429 with a
// Retry-After: one beyond the deadline ends the set-up at once, after that
// one request (a value too large for a time.Duration wrapped round to a
// negative wait, and the set-up retried in a tight loop); "0" and an
// HTTP-date are waited out and the registration goes through.
func TestSetupRetryAfterValues(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter func() string
		wantErr    string // "" means the set-up succeeds
	}{
		{"BeyondTheDeadline", func() string { return "3600" }, "past the set-up deadline"},
		{"TooLargeForADuration", func() string { return "9223372037" }, "past the set-up deadline"},
		{"TooLargeForUint64", func() string { return "99999999999999999999" }, "past the set-up deadline"},
		{"Zero", func() string { return "0" }, ""},
		{"HTTPDate", func() string { return time.Now().Add(time.Second).UTC().Format(http.TimeFormat) }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu       sync.Mutex
				requests int
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				requests++
				n := requests
				mu.Unlock()
				if n == 1 {
					w.Header().Set("Retry-After", tc.retryAfter())
					w.WriteHeader(http.StatusTooManyRequests)
					return
				}
				w.WriteHeader(http.StatusCreated)
			}))
			defer srv.Close()
			s := &scenario.Setup{Client: srv.Client(), Endpoints: scenario.NewEndpoints(srv.URL), Parallel: 1, Deadline: time.Now().Add(30 * time.Second)}
			rep, err := s.Run(context.Background(), []*scenario.User{scenario.NewUser("a", "pw-a-12345")}, false)
			mu.Lock()
			defer mu.Unlock()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || requests != 1 {
					t.Errorf("got %v after %d requests, want an error naming the deadline after one", err, requests)
				}
				return
			}
			if err != nil || rep.Registered != 1 || requests != 2 || rep.Waited == 0 {
				t.Errorf("got %+v, %v after %d requests; want the user registered by the second, after a wait", rep, err, requests)
			}
		})
	}
}

// TestSetupGivesUpAtTheDeadlineOnAStalledTarget: a target that never
// answers holds a registration until the deadline, not past it, whatever
// the client's own timeout (here none), and the error names the deadline.
func TestSetupGivesUpAtTheDeadlineOnAStalledTarget(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // answers nothing
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release) // before Close, which waits for the handlers
	s := &scenario.Setup{Client: srv.Client(), Endpoints: scenario.NewEndpoints(srv.URL), Parallel: 2,
		Deadline: time.Now().Add(300 * time.Millisecond)}
	done := make(chan error, 1)
	began := time.Now()
	go func() {
		_, err := s.Run(context.Background(), []*scenario.User{scenario.NewUser("a", "pw-a-12345"), scenario.NewUser("b", "pw-b-12345")}, false)
		done <- err
	}()
	select {
	case err := <-done:
		if took := time.Since(began); took > time.Second {
			t.Errorf("set-up gave up after %s, want about 300ms", took)
		}
		if err == nil || !strings.Contains(err.Error(), "set-up deadline") {
			t.Errorf("got %v, want an error naming the set-up deadline", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("set-up still waiting 5s after a deadline of 300ms")
	}
}

// TestSetupLoginFailureHint: only a login the target refused (401) hints
// at an account of that name with another password; a failing target or a
// set-up cancelled while logging in gets no such hint.
func TestSetupLoginFailureHint(t *testing.T) {
	const hint = "another password"
	tests := []struct {
		name     string
		status   int  // of the login answer
		cancel   bool // cancel set-up while the login waits instead
		wantHint bool
	}{
		{"Refused", http.StatusUnauthorized, false, true},
		{"ServerError", http.StatusInternalServerError, false, false},
		{"Cancelled", 0, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == "/auth/register":
					w.WriteHeader(http.StatusConflict)
				case tc.cancel:
					// Read whole, the request lets the server see
					// the client go away.
					_, _ = io.Copy(io.Discard, r.Body)
					cancel() // the login is in flight
					select {
					case <-r.Context().Done():
					case <-release:
					}
				default:
					w.WriteHeader(tc.status)
					fmt.Fprint(w, `{"error":"no"}`)
				}
			}))
			defer srv.Close()
			defer close(release) // before Close, which waits for the handlers
			s := &scenario.Setup{Client: srv.Client(), Endpoints: scenario.NewEndpoints(srv.URL), Parallel: 1, Deadline: time.Now().Add(time.Minute)}
			_, err := s.Run(ctx, []*scenario.User{scenario.NewUser("a", "pw-a-12345")}, true)
			if err == nil {
				t.Fatal("set-up succeeded, want it to fail")
			}
			if got := strings.Contains(err.Error(), hint); got != tc.wantHint {
				t.Errorf("error %q: hint %v, want %v", err, got, tc.wantHint)
			}
		})
	}
}

// TestSetupChecksExistingAccounts: without logging users in for the run
// (login, mixed, churn), set-up logs an account that existed in once, to
// check that it takes the load test's password, and logs that session out
// again; one that refuses the password fails the set-up with a hint, as
// it does for read. A new account needs no check.
func TestSetupChecksExistingAccounts(t *testing.T) {
	const token = "existing-account-session-0"
	tests := []struct {
		name        string
		register    int // the registration's answer
		login       int // the check's
		logout      int // the logout's
		wantErr     string
		wantLogins  int
		wantLogouts int
		wantChecked int
	}{
		{"New", http.StatusCreated, http.StatusOK, http.StatusOK, "", 0, 0, 0},
		{"ExistingWithThePassword", http.StatusConflict, http.StatusOK, http.StatusOK, "", 1, 1, 1},
		{"ExistingWithAnotherPassword", http.StatusConflict, http.StatusUnauthorized, http.StatusOK,
			"checking the password of the existing account a (an account of that name with another password? choose another -user-prefix)", 1, 0, 0},
		{"LogoutFails", http.StatusConflict, http.StatusOK, http.StatusInternalServerError, "logging out the session that checked a's password", 1, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu              sync.Mutex
				logins, logouts int
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				switch r.URL.Path {
				case "/auth/register":
					w.WriteHeader(tc.register)
				case "/auth/login":
					logins++
					w.WriteHeader(tc.login)
					fmt.Fprintf(w, `{"sessionId":%q}`, token)
				case "/auth/logout":
					if got := r.Header.Get("X-Session-Id"); got != token {
						t.Errorf("logout of session %q, want the check's %q", got, token)
					}
					logouts++
					w.WriteHeader(tc.logout)
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			s := &scenario.Setup{Client: srv.Client(), Endpoints: scenario.NewEndpoints(srv.URL), Parallel: 1, Deadline: time.Now().Add(time.Minute)}
			users := []*scenario.User{scenario.NewUser("a", "pw-a-12345")}
			rep, err := s.Run(context.Background(), users, false)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
			}
			mu.Lock()
			defer mu.Unlock()
			if logins != tc.wantLogins || logouts != tc.wantLogouts || rep.Checked != tc.wantChecked {
				t.Errorf("got %d logins, %d logouts, %d checked; want %d, %d, %d", logins, logouts, rep.Checked, tc.wantLogins, tc.wantLogouts, tc.wantChecked)
			}
			if users[0].Token != "" {
				t.Errorf("the user holds session %q after set-up, want none: the check's is logged out", users[0].Token)
			}
		})
	}
}

func TestReadSessions(t *testing.T) {
	users, err := scenario.ReadSessions(strings.NewReader("# made by the benchmark\nbench-0 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\nbench-1 BBBBBBBBBBBBBBBBBBBBBBBBBBBBBB\n"))
	if err != nil || len(users) != 2 || users[1].Name != "bench-1" || users[1].Token != "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBB" {
		t.Fatalf("ReadSessions = %v, %v; want bench-0 and bench-1 with their tokens", users, err)
	}
	for _, bad := range []string{"", "bench-0\n", "bench-0 short\n"} {
		if _, err := scenario.ReadSessions(strings.NewReader(bad)); err == nil {
			t.Errorf("ReadSessions(%q): got no error", bad)
		}
	}
}
