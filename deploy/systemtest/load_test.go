package systemtest

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// A load never runs longer than this, even if a case forgets to stop it.
const maxLoad = 2 * time.Minute

// stream is one kind of request sent at a steady rate. send returns the
// response, and an error when the request failed.
type stream struct {
	name  string
	every time.Duration
	send  func() (response, error)
}

// profileStream reads a profile through c every interval; anything but
// the user's own profile is a failure.
func profileStream(c *client, token, username string, every time.Duration) stream {
	return stream{name: "GET /profile", every: every, send: func() (response, error) {
		r, err := c.do(context.Background(), http.MethodGet, "/profile", token, nil)
		if err != nil {
			return r, err
		}
		return r, profileOf(r, username)
	}}
}

// loginStream logs u in through c every interval; anything but 200 is a
// failure.
func loginStream(c *client, u credentials, every time.Duration) stream {
	return stream{name: "POST /auth/login", every: every, send: func() (response, error) {
		r, err := c.do(context.Background(), http.MethodPost, "/auth/login", "", u)
		if err != nil {
			return r, err
		}
		if r.status != http.StatusOK {
			return r, fmt.Errorf("login: got %v, want 200", r)
		}
		return r, nil
	}}
}

// refreshStream refreshes sessions through c every interval, each with
// the token the last refresh of that session handed out, so a refresh
// whose answer was lost leaves a revoked token behind; anything but 200 is
// a failure, and a 503 (which changes nothing) keeps the old token. The
// route reads and ignores a body: each one trickles in over bodyTime, so
// the request is in flight at its replica all that time, and nginx never
// sends a POST that a replica has received to another. Each of tokens
// (sessions of one user, more than are ever in flight together) carries
// one request at a time.
func refreshStream(c *client, tokens []string, every, bodyTime time.Duration) stream {
	idle := make(chan string, len(tokens))
	for _, token := range tokens {
		idle <- token
	}
	return stream{name: "POST /auth/refresh", every: every, send: func() (response, error) {
		token := <-idle
		r, err := c.send(context.Background(), http.MethodPost, "/auth/refresh", token, newTrickle(bodyTime))
		if err == nil && r.status != http.StatusOK {
			err = fmt.Errorf("refresh: got %v, want 200", r)
		}
		if err == nil {
			var renewed string
			if renewed, err = sessionID(r); err == nil {
				token = renewed
			}
		}
		idle <- token
		return r, err
	}}
}

// load sends its streams open-loop: a request leaves at its time whether
// or not earlier ones have been answered, so a stalled replica shows up as
// latency and failures instead of slowing the load down.
type load struct {
	cancel  context.CancelFunc
	pacers  sync.WaitGroup
	flights sync.WaitGroup

	mu      sync.Mutex
	results []result
}

type result struct {
	stream   string
	sent     time.Time
	status   int // 0 when no answer came
	instance string
	elapsed  time.Duration
	failure  string // empty when the request succeeded
}

func startLoad(streams ...stream) *load {
	ctx, cancel := context.WithTimeout(context.Background(), maxLoad)
	l := &load{cancel: cancel}
	for _, s := range streams {
		l.pacers.Go(func() {
			tick := time.NewTicker(s.every)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					l.flights.Go(func() { l.record(s, s.send) })
				}
			}
		})
	}
	return l
}

func (l *load) record(s stream, send func() (response, error)) {
	sent := time.Now()
	r, err := send()
	res := result{stream: s.name, sent: sent, status: r.status, instance: r.instance(), elapsed: r.elapsed}
	if err != nil {
		res.failure = err.Error()
	}
	l.mu.Lock()
	l.results = append(l.results, res)
	l.mu.Unlock()
}

// stop ends the load and waits for the requests in flight: they count.
func (l *load) stop() report {
	l.cancel()
	l.pacers.Wait()
	l.flights.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return newReport(l.results)
}

// report sums up a load's results.
type report struct {
	results   []result
	requests  int
	perStream map[string]int
	failed    int
	failures  map[string]int // by message, with the replica's name
	statuses  map[int]int    // of the failed requests; 0 when no answer came
	instances map[string]int // successful answers per X-Instance
	latencies []time.Duration
}

func newReport(results []result) report {
	r := report{results: results, perStream: map[string]int{}, failures: map[string]int{}, statuses: map[int]int{}, instances: map[string]int{}}
	for _, res := range results {
		r.requests++
		r.perStream[res.stream]++
		r.latencies = append(r.latencies, res.elapsed)
		if res.failure != "" {
			r.failed++
			r.failures[res.failure]++
			r.statuses[res.status]++
			continue
		}
		r.instances[res.instance]++
	}
	slices.Sort(r.latencies)
	return r
}

// sentBetween is the report of the requests sent from from to to.
func (r report) sentBetween(from, to time.Time) report {
	var within []result
	for _, res := range r.results {
		if !res.sent.Before(from) && res.sent.Before(to) {
			within = append(within, res)
		}
	}
	return newReport(within)
}

// slowerThan is the share of requests that took longer than d.
func (r report) slowerThan(d time.Duration) float64 {
	if len(r.latencies) == 0 {
		return 0
	}
	// latencies is sorted: the slow ones are at its end.
	fast, _ := slices.BinarySearch(r.latencies, d+1)
	return float64(len(r.latencies)-fast) / float64(len(r.latencies))
}

// quantile is the q-quantile of the latencies (nearest rank).
func (r report) quantile(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(r.latencies)))) - 1
	return r.latencies[max(i, 0)]
}

func (r report) failureShare() float64 {
	if r.requests == 0 {
		return 0
	}
	return float64(r.failed) / float64(r.requests)
}

func (r report) String() string {
	var streams []string
	for _, name := range slices.Sorted(maps.Keys(r.perStream)) {
		streams = append(streams, fmt.Sprintf("%d %s", r.perStream[name], name))
	}
	return fmt.Sprintf("%d requests (%s), %d failed (%.2f%%), latency p50 %v p99 %v max %v, answered by %v",
		r.requests, strings.Join(streams, ", "), r.failed, 100*r.failureShare(),
		r.quantile(0.50).Round(time.Microsecond), r.quantile(0.99).Round(time.Microsecond),
		r.quantile(1).Round(time.Microsecond), r.instances)
}

// wantNoFailures fails the test, with the failures listed, when any
// request failed.
func (r report) wantNoFailures(t testing.TB) {
	t.Helper()
	if r.failed > 0 {
		r.logFailures(t)
		t.Errorf("%d of %d requests failed, want none", r.failed, r.requests)
	}
}

// logFailures lists the distinct failures, most frequent first.
func (r report) logFailures(t testing.TB) {
	t.Helper()
	msgs := slices.SortedFunc(maps.Keys(r.failures), func(a, b string) int { return r.failures[b] - r.failures[a] })
	for i, m := range msgs {
		if i == 10 {
			t.Logf("  … and %d other failures", len(msgs)-i)
			break
		}
		t.Logf("  %d× %s", r.failures[m], m)
	}
}
