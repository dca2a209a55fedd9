package ratelimit_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/poll"
	"redis-session-app/services/api/internal/ratelimit"
	"redis-session-app/services/api/internal/redisstore"
	"redis-session-app/services/api/internal/redistest"
	"redis-session-app/services/api/internal/session"
)

// lateTimeout is the client's timeout in the freeze tests: the service's
// default, whose margin (a quarter) absorbs the scheduling delays of a
// loaded machine and the race detector.
const lateTimeout = 500 * time.Millisecond

// TestLateChecksChangeNothing freezes Redis (SIGSTOP) for longer than the
// client's timeout while checks of every limit are in flight, on keys
// that exist and on keys that do not. The checks sit in Redis's socket
// buffers and run when it wakes, after the limiter has given up: each
// call must fail with session.ErrUnavailable (the caller answers 503),
// and what Redis runs late must spend no token, so that a client retrying
// through a stall is not refused later for attempts that never happened.
func TestLateChecksChangeNothing(t *testing.T) {
	srv := redistest.Start(t)
	rdb := lateClient(t, srv)
	l := newLimiter(rdb, perUser, perIP)
	// Its listings settle their reservations by giving back.
	capped := newCapLimiter(rdb, perSessions)
	ctx := context.Background()

	// Limits already counted once, whose TAT must stay as it is.
	login(t, l, "10.6.0.1", "Seen")
	if _, err := l.AllowRegister(ctx, "10.6.0.2"); err != nil {
		t.Fatal(err)
	}
	sessions(t, l, "uid-seen")

	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"AllowLoginCounted", func(ctx context.Context) error { _, err := l.AllowLogin(ctx, "10.6.0.1", "seen"); return err }},
		{"AllowLoginNew", func(ctx context.Context) error { _, err := l.AllowLogin(ctx, "10.6.0.3", "unseen"); return err }},
		{"AllowRegisterCounted", func(ctx context.Context) error { _, err := l.AllowRegister(ctx, "10.6.0.2"); return err }},
		{"AllowRegisterNew", func(ctx context.Context) error { _, err := l.AllowRegister(ctx, "10.6.0.4"); return err }},
		{"AllowSessionsCounted", func(ctx context.Context) error { _, err := l.AllowSessions(ctx, "uid-seen"); return err }},
		{"AllowSessionsNew", func(ctx context.Context) error { _, err := l.AllowSessions(ctx, "uid-unseen"); return err }},
		{"ChargeListingCounted", func(ctx context.Context) error { return l.ChargeListing(ctx, "uid-seen", 100) }},
		{"ChargeListingNew", func(ctx context.Context) error { return l.ChargeListing(ctx, "uid-unseen", 100) }},
		{"GiveBackCounted", func(ctx context.Context) error { return capped.ChargeListing(ctx, "uid-seen", 1) }},
		{"GiveBackNew", func(ctx context.Context) error { return capped.ChargeListing(ctx, "uid-unseen", 1) }},
	}
	keys := []string{
		"rate:rl:ip:10.6.0.1", "rate:rl:user:seen",
		"rate:rl:ip:10.6.0.3", "rate:rl:user:unseen",
		"rate:rl:ip:10.6.0.2", "rate:rl:ip:10.6.0.4",
		"rate:rl:sessions:{uid-seen}", "rate:rl:sessions:{uid-unseen}",
	}
	warm(t, rdb, l, len(calls))
	// Loads the refund's script, as warm loads the check's.
	if err := capped.ChargeListing(ctx, "uid-warm", 1); err != nil {
		t.Fatalf("warming up: %v", err)
	}
	before := srv.Strings(t, keys)
	for _, k := range []string{"rate:rl:ip:10.6.0.1", "rate:rl:user:seen", "rate:rl:ip:10.6.0.2", "rate:rl:sessions:{uid-seen}"} {
		if before[k] == "" {
			t.Fatalf("%s was not written before the freeze", k)
		}
	}
	srv.ResetStats(t)

	srv.Pause()
	paused := time.Now()
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Go(func() {
			if err := c.call(ctx); !errors.Is(err, session.ErrUnavailable) {
				t.Errorf("%s while Redis is frozen: got %v, want %v", c.name, err, session.ErrUnavailable)
			}
		})
	}
	wg.Wait()
	time.Sleep(time.Until(paused.Add(2 * lateTimeout)))
	srv.Resume()

	// One script per call reached Redis before it froze (a login's user
	// limit is checked only once its IP limit answered).
	waitScripts(t, srv, int64(len(calls)))
	if got := srv.LateRefusals(t); got < int64(len(calls)) {
		t.Errorf("Redis refused %d scripts as too late, want %d: the checks ran without a deadline", got, len(calls))
	}
	wantUnchanged(t, before, srv.Strings(t, keys))

	// And the limiter works as before once Redis is back.
	if d := login(t, l, "10.6.0.3", "unseen"); !d.Allowed {
		t.Errorf("first login after the freeze: got %+v, want allowed", d)
	}
}

// TestLateUserCheckChangesNothing freezes Redis between a login's two
// checks: the IP limit answered, the user limit's check is sent to a
// frozen Redis. The login fails with session.ErrUnavailable and the
// user's limit, counted once before, keeps its TAT.
func TestLateUserCheckChangesNothing(t *testing.T) {
	srv := redistest.Start(t)
	rdb := lateClient(t, srv)
	l := newLimiter(rdb, perUser, perIP)
	ctx := context.Background()
	login(t, l, "10.6.1.1", "between")
	warm(t, rdb, l, 2)
	const userKey = "rate:rl:user:between"
	before := srv.Strings(t, []string{userKey})

	// Freeze Redis as soon as the IP limit's check has been answered.
	var once sync.Once
	var paused time.Time
	rdb.AddHook(afterHook{after: func(cmd redis.Cmder) {
		if cmd.Err() == nil && slices.Contains(cmd.Args(), any("rate:rl:ip:10.6.1.2")) {
			once.Do(func() { srv.Pause(); paused = time.Now() })
		}
	}})
	srv.ResetStats(t)
	if _, err := l.AllowLogin(ctx, "10.6.1.2", "between"); !errors.Is(err, session.ErrUnavailable) {
		t.Errorf("AllowLogin frozen between its checks: got %v, want %v", err, session.ErrUnavailable)
	}
	if paused.IsZero() {
		t.Fatal("the IP limit's check was not seen: Redis never froze")
	}
	// Frozen for longer than a refund's first try waits, so that the
	// refund is seen to be tried again once Redis answers.
	time.Sleep(time.Until(paused.Add(4 * lateTimeout)))
	srv.Resume()

	waitScripts(t, srv, 2) // the IP limit's, then the user limit's
	// The user limit's check, and the refund's tries that timed out
	// during the freeze.
	if got := srv.LateRefusals(t); got < 1 {
		t.Errorf("Redis refused %d scripts as too late, want at least 1 (the user limit's)", got)
	}
	wantUnchanged(t, before, srv.Strings(t, []string{userKey}))
	// The IP's check was answered in time and counted; the login is
	// answered 503 all the same, so the limiter gives its token back,
	// trying again until Redis answers: the key of an IP seen for the
	// first time is gone again.
	poll.For(t, 5*time.Second, "the IP's token to be given back", func() bool {
		return srv.Strings(t, []string{"rate:rl:ip:10.6.1.2"})["rate:rl:ip:10.6.1.2"] == ""
	})
}

// lateClient is a client as the service makes it, with lateTimeout.
func lateClient(t *testing.T, srv *redistest.Server) redis.UniversalClient {
	t.Helper()
	rdb := redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr()}, Timeout: lateTimeout})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// warm opens n connections of rdb, held at once and then put back in its
// pool, so that every check made while Redis is frozen goes out on a
// connection that is already open: a new one would wait for its handshake
// and never send the check itself. It also loads the script through l,
// whose first run would otherwise be an EVALSHA that fails with NOSCRIPT.
func warm(t *testing.T, rdb redis.UniversalClient, l *ratelimit.Limiter, n int) {
	t.Helper()
	ctx := context.Background()
	if _, err := l.AllowSessions(ctx, "uid-warm"); err != nil {
		t.Fatalf("warming up: %v", err)
	}
	c, ok := rdb.(*redis.Client)
	if !ok {
		t.Fatalf("warming up: got a %T, want a *redis.Client", rdb)
	}
	conns := make([]*redis.Conn, n)
	for i := range conns {
		conns[i] = c.Conn()
		if err := conns[i].Ping(ctx).Err(); err != nil {
			t.Fatalf("warming up: %v", err)
		}
	}
	for _, cn := range conns {
		_ = cn.Close()
	}
	if got := c.PoolStats().IdleConns; got < uint32(n) {
		t.Fatalf("warming up: %d idle connections, want at least %d", got, n)
	}
}

func wantUnchanged(t *testing.T, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		switch {
		case after[k] == v:
		case v == "":
			t.Errorf("%s: written (TAT %s) by a check the limiter had given up on", k, after[k])
		default:
			t.Errorf("%s: TAT %s became %s by a check the limiter had given up on", k, v, after[k])
		}
	}
}

// waitScripts waits until Redis has run n scripts since its statistics
// were reset: those it read from its sockets when it woke.
func waitScripts(t *testing.T, srv *redistest.Server, n int64) {
	t.Helper()
	poll.For(t, 5*time.Second, "Redis to run the scripts sent while it was frozen", func() bool {
		return srv.CommandStats(t)["evalsha"] >= n
	})
}

// afterHook calls after with every command once it has been answered or
// has failed.
type afterHook struct {
	after func(redis.Cmder)
}

func (h afterHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h afterHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.after(cmd)
		return err
	}
}

func (h afterHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
