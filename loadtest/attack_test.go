package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestJourneysShortOfUsersFallShort: one churn user whose reads take 100ms
// cannot keep up with 50 arrivals a second. The steps that waited for it
// leave late and the run falls short, which -strict fails; and the sending
// ends with -duration, not when the last waiting step gets the user.
func TestJourneysShortOfUsersFallShort(t *testing.T) {
	srv := fakeAPI(t, func(r *http.Request) {
		if r.URL.Path == "/profile" {
			time.Sleep(100 * time.Millisecond) // the target's service time
		}
	})
	began := time.Now()
	rep, out, err := runTool(t, "-target", srv.URL, "-scenario", "churn", "-users", "1",
		"-rate", "50", "-duration", "1s", "-timeout", "1s", "-strict")
	took := time.Since(began)
	if err == nil || !strings.Contains(err.Error(), "achieved / asked rate") {
		t.Errorf("got %v, want -strict to fail the run for its shortfall\n%s", err, out)
	}
	if !rep.Shortfall || rep.LateSends == 0 || rep.AchievedRate > 25 {
		t.Errorf("got shortfall %v, %d late sends, achieved %.1f/s; want a shortfall, late sends and at most half of 50/s\n%s",
			rep.Shortfall, rep.LateSends, rep.AchievedRate, out)
	}
	if !strings.Contains(out, "WARNING: achieved") || !strings.Contains(out, "after they were due") {
		t.Errorf("the report does not warn of the shortfall and the late sends:\n%s", out)
	}
	if took > 2*time.Second {
		t.Errorf("the run took %s, want it over by -duration + -timeout (2s)", took)
	}
}

// TestClosedModelRateRunsToTheLastAnswer: 4 workers against a target that
// takes 50ms can do at most 80 requests a second. Ended by -max-requests
// after two rounds, the rate is over both rounds' answers, not only until
// the second round was sent.
func TestClosedModelRateRunsToTheLastAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond) // the target's service time
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()
	rep, out, err := runTool(t, "-target", srv.URL, "-scenario", "get", "-workers", "4", "-max-requests", "8")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if rep.Requests != 8 || rep.AchievedRate > 80 {
		t.Errorf("got %d requests at %.1f/s, want 8 at no more than 80/s\n%s", rep.Requests, rep.AchievedRate, out)
	}
}

// TestStalledTargetEndsTheSendingOnTime: a target that never answers holds
// every worker (or every request in flight) until -timeout. No request
// leaves after -duration, and the run is over by -duration + -timeout.
func TestStalledTargetEndsTheSendingOnTime(t *testing.T) {
	tests := []struct {
		name string
		load []string
		want int64 // requests the target gets: one per worker or slot
	}{
		{"ClosedModel", []string{"-workers", "4"}, 4},
		{"OpenModelAtMaxInFlight", []string{"-rate", "10", "-max-in-flight", "2"}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got.Add(1)
				<-r.Context().Done() // answers nothing; the client gives up
			}))
			defer srv.Close()
			began := time.Now()
			_, out, _ := runTool(t, append([]string{"-target", srv.URL, "-scenario", "get", "-duration", "500ms", "-timeout", "1s"}, tc.load...)...)
			if took := time.Since(began); took > 1800*time.Millisecond {
				t.Errorf("the run took %s, want it over by -duration + -timeout (1.5s)\n%s", took, out)
			}
			if n := got.Load(); n != tc.want {
				t.Errorf("the target got %d requests, want %d: none after -duration\n%s", n, tc.want, out)
			}
		})
	}
}

// TestDroppedConnectionsAreErrors: a target that closes the connection of
// every fifth request without answering it. Go's transport sends such a
// GET again on a new connection, and its answer is right; each one the
// target dropped counts as an error all the same.
func TestDroppedConnectionsAreErrors(t *testing.T) {
	var served, dropped atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if served.Add(1)%5 != 0 {
			fmt.Fprint(w, "ok")
			return
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		dropped.Add(1)
		conn.Close()
	}))
	defer srv.Close()
	// One worker: one connection at a time, reused until the target
	// closes it.
	rep, out, err := runTool(t, "-target", srv.URL, "-scenario", "get", "-workers", "1", "-max-requests", "40")
	if err == nil || !strings.Contains(err.Error(), "error rate") {
		t.Errorf("got %v, want the error rate breached\n%s", err, out)
	}
	if n := dropped.Load(); n == 0 || rep.Errors != uint64(n) {
		t.Errorf("got %d errors, want one for each of the %d requests the target dropped\n%s", rep.Errors, n, out)
	}
	if !strings.Contains(out, "connection closed without an answer") {
		t.Errorf("the report does not say what the errors were:\n%s", out)
	}
}

// TestUserIsBackBeforeTheNextStep: in the closed model with as many churn
// users as workers, a worker's user is idle again before that worker asks
// for its next step, so no step waits for one; with fewer users than
// workers some do.
func TestUserIsBackBeforeTheNextStep(t *testing.T) {
	tests := []struct {
		users    string
		wantWait bool
	}{
		{"3", false},
		{"2", true},
	}
	for _, tc := range tests {
		t.Run(tc.users+"Users", func(t *testing.T) {
			srv := fakeAPI(t, nil)
			rep, out, err := runTool(t, "-target", srv.URL, "-scenario", "churn", "-users", tc.users, "-workers", "3", "-max-requests", "120")
			if err != nil {
				t.Fatalf("run: %v\n%s", err, out)
			}
			if got := rep.UserWaits > 0; got != tc.wantWait {
				t.Errorf("%d of %d requests waited for an idle user; want some: %v\n%s", rep.UserWaits, rep.Requests, tc.wantWait, out)
			}
		})
	}
}

// TestTimeoutIsOneError: requests that time out awaiting the headers and
// while reading the body have one cause, -timeout, and one error row.
func TestTimeoutIsOneError(t *testing.T) {
	var n atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			// Half an answer: headers and the start of the body.
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(http.StatusOK)
			fmt.Fprint(w, "partial")
			http.NewResponseController(w).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release) // before Close, which waits for the handlers
	rep, out, _ := runTool(t, "-target", srv.URL, "-scenario", "get", "-workers", "2", "-max-requests", "6", "-timeout", "200ms")
	if rep.Errors != 6 || len(rep.ErrorDetails) != 1 || !strings.Contains(rep.ErrorDetails[0].Detail, "-timeout (200ms) exceeded") {
		t.Errorf("got %d errors in %+v, want 6 in one row for -timeout\n%s", rep.Errors, rep.ErrorDetails, out)
	}
}

// TestAskedRateIsTheSchedules: two requests in flight at 5ms each can
// carry 400 of the 500 arrivals a second asked, so the last ones leave
// after -duration. The report still says 500/s were asked, and the
// shortfall is against that.
func TestAskedRateIsTheSchedules(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond) // the target's service time
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()
	rep, out, _ := runTool(t, "-target", srv.URL, "-scenario", "get", "-rate", "500", "-max-in-flight", "2", "-duration", "1s")
	if rep.Elapsed <= 1 {
		t.Fatalf("the run took %gs, want the last request to leave after the 1s schedule\n%s", rep.Elapsed, out)
	}
	if rep.AskedRate == nil {
		t.Fatalf("got no askedRate, want 500\n%s", out)
	}
	if *rep.AskedRate != 500 {
		t.Errorf("got askedRate %g, want 500\n%s", *rep.AskedRate, out)
	}
	if !strings.Contains(out, "of 500/s asked") || !rep.Shortfall {
		t.Errorf("got shortfall %v; want the headline to say 500/s asked and a shortfall against it\n%s", rep.Shortfall, out)
	}
}

// TestProgressInFlightIsWhatLeft: five churn users against a target that
// stalls every login hold five requests in flight; the other arrivals of
// 50 a second wait for an idle user, and the progress line counts them
// apart, not as requests in flight.
func TestProgressInFlightIsWhatLeft(t *testing.T) {
	release := make(chan struct{})
	srv := fakeAPI(t, func(r *http.Request) {
		if r.URL.Path == "/auth/login" {
			// Read whole, the request lets the server see the client
			// give up.
			_, _ = io.Copy(io.Discard, r.Body)
			select { // answers nothing
			case <-r.Context().Done():
			case <-release:
			}
		}
	})
	t.Cleanup(func() { close(release) }) // before the server's Close, which waits for the handlers
	_, out, _ := runTool(t, "-target", srv.URL, "-scenario", "churn", "-users", "5", "-rate", "50",
		"-duration", "1s", "-timeout", "1s", "-progress", "100ms")
	lines := regexp.MustCompile(`in flight (\d+)(  waiting for a user (\d+))?`).FindAllStringSubmatch(out, -1)
	if len(lines) == 0 {
		t.Fatalf("no progress line\n%s", out)
	}
	var maxInFlight, maxWaiting int
	for _, l := range lines {
		n, _ := strconv.Atoi(l[1])
		w, _ := strconv.Atoi(l[3])
		maxInFlight, maxWaiting = max(maxInFlight, n), max(maxWaiting, w)
	}
	if maxInFlight != 5 {
		t.Errorf("progress lines showed up to %d in flight, want 5, one per user\n%s", maxInFlight, out)
	}
	if maxWaiting == 0 {
		t.Errorf("progress lines showed no step waiting for a user\n%s", out)
	}
}
