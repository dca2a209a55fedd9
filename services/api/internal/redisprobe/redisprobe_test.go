package redisprobe_test

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"redis-session-app/services/api/internal/redisprobe"
	"redis-session-app/services/api/internal/redisstore"
	"redis-session-app/services/api/internal/redistest"
)

const probeKey = "probe:test"

// newProbe is a probe of srv through the service's own client, with its
// gauge.
func newProbe(t *testing.T, srv *redistest.Server, o redisprobe.Options) (*redisprobe.Probe, prometheus.Gauge) {
	t.Helper()
	c := redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr()}, Timeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	up := prometheus.NewGauge(prometheus.GaugeOpts{Name: "up"})
	o.Key, o.Up = probeKey, up
	if o.Timeout == 0 {
		o.Timeout = 300 * time.Millisecond
	}
	return redisprobe.New(c, o), up
}

func TestProbe(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(*redistest.Server, testing.TB)
		heal    func(*redistest.Server, testing.TB)
		wantErr string // part of Ready's error; empty for ready
	}{
		{"OK", nil, nil, ""},
		{"ErrOutOfMemory", (*redistest.Server).FillMemory, (*redistest.Server).AcceptWrites, "OOM"},
		{"ErrReadOnly", (*redistest.Server).MakeReadOnly, (*redistest.Server).AcceptWrites, "READONLY"},
		{"ErrDown", func(s *redistest.Server, _ testing.TB) { s.Stop() }, func(s *redistest.Server, _ testing.TB) { s.Restart() }, "redis probe"},
		{"ErrHung", func(s *redistest.Server, _ testing.TB) { s.Pause() }, func(s *redistest.Server, _ testing.TB) { s.Resume() }, "redis probe"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			p, up := newProbe(t, srv, redisprobe.Options{})
			ctx := context.Background()
			if tc.breakIt != nil {
				tc.breakIt(srv, t)
			}
			p.ProbeOnce(ctx)
			err := p.Ready(ctx)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Ready: got %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Ready: got %v, want an error with %q", err, tc.wantErr)
			}
			wantUp := 1.0
			if tc.wantErr != "" {
				wantUp = 0
			}
			if got := testutil.ToFloat64(up); got != wantUp {
				t.Errorf("up: got %v, want %v", got, wantUp)
			}
			if tc.heal == nil {
				return
			}
			// It heals by itself: the next probe after Redis is back
			// finds it ready.
			tc.heal(srv, t)
			p.ProbeOnce(ctx)
			if err := p.Ready(ctx); err != nil {
				t.Errorf("Ready after healing: got %v, want nil", err)
			}
			if got := testutil.ToFloat64(up); got != 1 {
				t.Errorf("up after healing: got %v, want 1", got)
			}
		})
	}
}

// TestProbeKeyExpires: the probe's key is not one of the user records, so
// it must expire.
func TestProbeKeyExpires(t *testing.T) {
	srv := redistest.Start(t)
	p, _ := newProbe(t, srv, redisprobe.Options{})
	p.ProbeOnce(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ttl, err := srv.Client(t).PTTL(ctx, probeKey).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > 10*time.Second {
		t.Errorf("PTTL %s: got %v, want within (0, 10s]", probeKey, ttl)
	}
}

func TestReadyBeforeFirstProbe(t *testing.T) {
	srv := redistest.Start(t)
	p, up := newProbe(t, srv, redisprobe.Options{})
	if err := p.Ready(context.Background()); !errors.Is(err, redisprobe.ErrNotProbed) {
		t.Errorf("Ready: got %v, want %v", err, redisprobe.ErrNotProbed)
	}
	if got := testutil.ToFloat64(up); got != 0 {
		t.Errorf("up: got %v, want 0", got)
	}
}

// TestReadyStale: a success that is several intervals old says nothing
// about Redis now, so a probe loop that stopped cannot keep a replica ready.
func TestReadyStale(t *testing.T) {
	srv := redistest.Start(t)
	now := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	p, _ := newProbe(t, srv, redisprobe.Options{Interval: time.Second, Now: func() time.Time { return now }})
	p.ProbeOnce(context.Background())
	now = now.Add(3 * time.Second)
	if err := p.Ready(context.Background()); err != nil {
		t.Fatalf("Ready after 3s: got %v, want nil", err)
	}
	now = now.Add(5 * time.Second)
	if err := p.Ready(context.Background()); err == nil {
		t.Error("Ready after 8s: got nil, want an error")
	}
}

// TestProbeCutShortByShutdownRecordsNothing: a probe whose context ends
// says nothing about Redis and leaves the last outcome as it was.
func TestProbeCutShortByShutdownRecordsNothing(t *testing.T) {
	srv := redistest.Start(t)
	p, up := newProbe(t, srv, redisprobe.Options{})
	p.ProbeOnce(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.ProbeOnce(ctx)
	if err := p.Ready(context.Background()); err != nil {
		t.Errorf("Ready: got %v, want nil", err)
	}
	if got := testutil.ToFloat64(up); got != 1 {
		t.Errorf("up: got %v, want 1", got)
	}
}

// messages is a slog.Handler that passes each message on, dropping those
// nobody waits for.
type messages chan string

func (m messages) Enabled(context.Context, slog.Level) bool { return true }
func (m messages) WithAttrs([]slog.Attr) slog.Handler       { return m }
func (m messages) WithGroup(string) slog.Handler            { return m }
func (m messages) Handle(_ context.Context, r slog.Record) error {
	select {
	case m <- r.Message:
	default:
	}
	return nil
}

// wait fails the test unless want is logged within 5 s.
func (m messages) wait(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case got := <-m:
			if strings.Contains(got, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no log message %q within 5s", want)
		}
	}
}

// TestStartProbesUntilStopped: the loop keeps probing with no one asking,
// notices Redis going and coming back, and is gone once stop returns.
func TestStartProbesUntilStopped(t *testing.T) {
	srv := redistest.Start(t)
	logged := make(messages, 16)
	p, up := newProbe(t, srv, redisprobe.Options{Interval: 20 * time.Millisecond, Timeout: 100 * time.Millisecond, Logger: slog.New(logged)})
	stop := p.Start(context.Background())
	defer stop()

	logged.wait(t, "takes writes")
	srv.FillMemory(t)
	logged.wait(t, "refuses writes")
	if got := testutil.ToFloat64(up); got != 0 {
		t.Errorf("up while out of memory: got %v, want 0", got)
	}
	srv.AcceptWrites(t)
	logged.wait(t, "takes writes")

	stop()
	stop() // a second call does nothing
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "redisprobe.(*Probe).run") {
		t.Errorf("the probe loop still runs after stop returned:\n%s", stacks)
	}
}
