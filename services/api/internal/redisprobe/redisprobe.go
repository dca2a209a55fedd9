// Package redisprobe tells whether the replica's Redis takes writes. A
// background loop writes one short-lived key about every second; readiness
// and the api_redis_up gauge both read the outcome of the last write.
//
// A write, not a PING: Redis answers PING while it refuses every write, out
// of memory under the noeviction policy or as a read-only replica after a
// failover, and such a Redis can serve no login, refresh or logout.
//
// /readyz reads the last outcome instead of asking Redis itself. /readyz is
// reachable by anyone through nginx, and a write per request would let any
// client turn its request rate into Redis writes; read from memory, /readyz
// costs Redis nothing however often it is asked, readiness and the gauge
// can never disagree, and the gauge stays current with no traffic at all.
// The price is an answer up to an interval old, well within what probes of
// load balancers and orchestrators (every few seconds) can tell apart.
package redisprobe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Defaults of zero Options.
const (
	defaultInterval = time.Second
	defaultTimeout  = 500 * time.Millisecond
)

// keyTTL is the expiry of the probe's key: every key the service writes
// expires, and a replica that is gone leaves its key behind for seconds
// only.
const keyTTL = 10 * time.Second

// ErrNotProbed is what Ready reports before the first probe has finished.
var ErrNotProbed = errors.New("redis not probed yet")

// Options configure a Probe.
type Options struct {
	// Key is the key each probe writes, with an expiry of ten seconds.
	// One per replica, so that replicas do not write over each other.
	Key string
	// Interval is the time between two probes; 1s when zero.
	Interval time.Duration
	// Timeout bounds each probe; 500ms when zero. Less than Interval, so
	// that probes never pile up.
	Timeout time.Duration
	// Up, when not nil, is set to 1 after a probe that succeeded and to 0
	// after one that failed.
	Up prometheus.Gauge
	// Logger gets a line whenever the outcome changes; none when nil.
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Probe writes to Redis in the background and remembers the outcome. It is
// safe for concurrent use.
type Probe struct {
	c        redis.UniversalClient
	key      string
	interval time.Duration
	timeout  time.Duration
	up       prometheus.Gauge
	log      *slog.Logger
	now      func() time.Time

	mu   sync.Mutex
	at   time.Time // when the last probe finished; zero before the first
	last error
	// seq counts the probes written. It is the key's value, so that two
	// GETs of the key a second apart show the replica probing, and a test
	// can tell the probe's writes from those of requests.
	seq uint64
}

// New returns a Probe of c; it probes nothing until Start.
func New(c redis.UniversalClient, o Options) *Probe {
	p := &Probe{c: c, key: o.Key, interval: o.Interval, timeout: o.Timeout, up: o.Up, log: o.Logger, now: o.Now}
	if p.interval <= 0 {
		p.interval = defaultInterval
	}
	if p.timeout <= 0 {
		p.timeout = defaultTimeout
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p
}

// Start probes at once and then every interval, in a goroutine of its own,
// until ctx ends or stop is called. stop returns once the goroutine has
// ended; calling it again does nothing.
func (p *Probe) Start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

func (p *Probe) run(ctx context.Context) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		p.probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe writes the key once and records the outcome, unless ctx ended
// meanwhile: a probe cut short by the shutdown says nothing about Redis.
// Only the loop calls it, so seq needs no lock of its own.
func (p *Probe) probe(ctx context.Context) {
	p.seq++
	pctx, cancel := context.WithTimeout(ctx, p.timeout)
	err := p.c.Set(pctx, p.key, p.seq, keyTTL).Err()
	cancel()
	if ctx.Err() != nil {
		return
	}
	p.record(err)
}

func (p *Probe) record(err error) {
	p.mu.Lock()
	changed := p.at.IsZero() || (err == nil) != (p.last == nil)
	p.at, p.last = p.now(), err
	// Under the lock, so that a Ready that sees this outcome never meets
	// a gauge that still shows the one before.
	if p.up != nil {
		if err == nil {
			p.up.Set(1)
		} else {
			p.up.Set(0)
		}
	}
	p.mu.Unlock()

	switch {
	case !changed:
	case err == nil:
		p.log.Info("redis takes writes", "key", p.key)
	default:
		p.log.Warn("redis refuses writes or cannot be reached", "key", p.key, "err", err)
	}
}

// Ready reports whether the last probe succeeded and is recent: a result
// older than three intervals (a probe loop that stopped) counts as a
// failure. It never talks to Redis, so ctx is unused; it is there to fit
// the readiness check of the HTTP server.
func (p *Probe) Ready(context.Context) error {
	p.mu.Lock()
	at, last := p.at, p.last
	p.mu.Unlock()
	switch {
	case at.IsZero():
		return ErrNotProbed
	case last != nil:
		return fmt.Errorf("redis probe: %w", last)
	}
	if age := p.now().Sub(at); age > 3*p.interval+p.timeout {
		return fmt.Errorf("redis probe: last success %v ago", age.Round(time.Millisecond))
	}
	return nil
}
