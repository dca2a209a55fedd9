package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/poll"
	"redis-session-app/services/api/internal/redisstore"
	"redis-session-app/services/api/internal/redistest"
	"redis-session-app/services/api/internal/scriptdeadline"
	"redis-session-app/services/api/internal/session"
)

// outageLimit is how long any call may take while Redis is unreachable,
// with a 500 ms timeout: the contract answers 503 within one second.
const outageLimit = time.Second

// calls returns one call of every store method, for a user and a token that
// exist before the outage.
func calls(s *redisstore.Sessions, u *redisstore.Users, userID, token string) []struct {
	name string
	call func(ctx context.Context) error
} {
	return []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Lookup", func(ctx context.Context) error { _, err := s.Lookup(ctx, token); return err }},
		{"LookupUnknown", func(ctx context.Context) error { _, err := s.Lookup(ctx, strings.Repeat("A", 76)); return err }},
		{"Create", func(ctx context.Context) error {
			_, _, err := s.Create(ctx, session.NewSession{UserID: userID, Username: "Alice"})
			return err
		}},
		{"Refresh", func(ctx context.Context) error { _, err := s.Refresh(ctx, token); return err }},
		{"Revoke", func(ctx context.Context) error { return s.Revoke(ctx, token) }},
		{"RevokeAll", func(ctx context.Context) error { _, err := s.RevokeAll(ctx, token); return err }},
		{"RevokeByID", func(ctx context.Context) error { return s.RevokeByID(ctx, token, "AAAAAAAAAAAAAAAAAAAAAA") }},
		{"List", func(ctx context.Context) error { _, err := s.List(ctx, userID); return err }},
		{"CreateUser", func(ctx context.Context) error {
			return u.CreateUser(ctx, session.User{Username: "Bob", PasswordHash: "h"})
		}},
		{"UserByName", func(ctx context.Context) error { _, err := u.UserByName(ctx, "Alice"); return err }},
	}
}

func TestOutage(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr()}, Timeout: 500 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	var hookErrors atomic.Int64
	rdb.AddHook(redisstore.NewErrorHook(func() { hookErrors.Add(1) }))
	store := redisstore.NewSessions(rdb, redisstore.SessionOptions{IdleTimeout: time.Hour})
	users := redisstore.NewUsers(rdb)
	ctx := context.Background()

	alice := register(t, users, "Alice")
	iss := create(t, store, alice.ID)
	if n := hookErrors.Load(); n != 0 {
		t.Fatalf("errors counted while Redis is up: got %v, want 0", n)
	}

	outages := []struct {
		name  string
		begin func()
		end   func()
	}{
		// A stopped server refuses connections: calls fail fast.
		{"Stopped", srv.Stop, srv.Restart},
		// A hung server accepts connections and never answers: calls wait
		// for the timeout.
		{"Paused", srv.Pause, srv.Resume},
	}
	for _, o := range outages {
		t.Run(o.name, func(t *testing.T) {
			o.begin()
			before := hookErrors.Load()
			// All at once, so that a hung server costs one timeout, not one
			// per call; each call has a connection of its own.
			var wg sync.WaitGroup
			for _, c := range calls(store, users, alice.ID, iss.Token) {
				wg.Go(func() {
					start := time.Now()
					err := c.call(ctx)
					if elapsed := time.Since(start); elapsed > outageLimit {
						t.Errorf("%s: took %v, want at most %v", c.name, elapsed, outageLimit)
					}
					if !errors.Is(err, session.ErrUnavailable) {
						t.Errorf("%s: got error %v, want %v", c.name, err, session.ErrUnavailable)
					}
					if err != nil && strings.Contains(err.Error(), iss.Token) {
						t.Errorf("%s: error %q holds the token", c.name, err)
					}
				})
			}
			wg.Wait()
			// A malformed token needs no Redis, so it is still just unknown.
			_, err := store.Lookup(ctx, "not a token")
			wantNotFound(t, "Lookup of a malformed token", err)
			if got, want := hookErrors.Load()-before, int64(len(calls(store, users, "", ""))); got < want {
				t.Errorf("errors counted by the hook: got %v, want at least %v", got, want)
			}

			o.end()
			// The same client recovers by itself. A restarted server is
			// empty, so the user is made again.
			poll.For(t, 5*time.Second, "store works again", func() bool {
				err := users.CreateUser(ctx, session.User{ID: alice.ID, Username: "Alice", PasswordHash: "h"})
				return err == nil || errors.Is(err, session.ErrUsernameTaken)
			})
			iss = create(t, store, alice.ID)
			lookup(t, store, iss.Token)
			list, err := store.List(ctx, alice.ID)
			if err != nil || len(list) == 0 {
				t.Errorf("List after the outage: got %v, %v, want sessions", list, err)
			}
		})
	}
}

func TestErrorHook(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr()}})
	t.Cleanup(func() { _ = rdb.Close() })
	var n atomic.Int64
	rdb.AddHook(redisstore.NewErrorHook(func() { n.Add(1) }))
	ctx := context.Background()
	if err := rdb.HSet(ctx, "h", "f", "v").Err(); err != nil {
		t.Fatalf("HSET: %v", err)
	}

	tests := []struct {
		name string
		run  func() error
		want int64
	}{
		{"OK", func() error { return rdb.Set(ctx, "k", "v", time.Minute).Err() }, 0},
		{"NilIsNotAnError", func() error { return rdb.Get(ctx, "missing").Err() }, 0},
		{"ScriptNotCachedIsNotAnError", func() error {
			_, _, err := redisstore.NewSessions(rdb, redisstore.SessionOptions{}).Create(ctx, session.NewSession{UserID: newUserID(t), Username: "a"})
			return err
		}, 0},
		{"CallerGoneIsNotAnError", func() error {
			// A client that hung up ends its request's context: the
			// call is given up, Redis did nothing wrong.
			gone, cancel := context.WithCancel(ctx)
			cancel()
			return rdb.Get(gone, "k").Err()
		}, 0},
		{"CommandError", func() error { return rdb.Incr(ctx, "h").Err() }, 1},
		{"PipelineError", func() error {
			_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.Get(ctx, "missing")
				p.Incr(ctx, "h")
				return nil
			})
			return err
		}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := n.Load()
			_ = tc.run()
			if got := n.Load() - before; got != tc.want {
				t.Errorf("errors counted: got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestLateHook: the late hook counts exactly the scripts Redis refused as
// run after their deadline, which the error hook counts as well.
func TestLateHook(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr()}})
	t.Cleanup(func() { _ = rdb.Close() })
	var late, failed atomic.Int64
	rdb.AddHook(redisstore.NewLateHook(func() { late.Add(1) }))
	rdb.AddHook(redisstore.NewErrorHook(func() { failed.Add(1) }))
	ctx := context.Background()
	script := redis.NewScript(scriptdeadline.Prelude + "return 1")

	tests := []struct {
		name                 string
		run                  func() error
		wantLate, wantErrors int64
	}{
		{"InTime", func() error { return script.Run(ctx, rdb, nil, time.Now().Add(time.Minute).UnixMilli()).Err() }, 0, 0},
		{"PastItsDeadline", func() error { return script.Run(ctx, rdb, nil, time.Now().Add(-time.Second).UnixMilli()).Err() }, 1, 1},
		{"OtherError", func() error { return rdb.Do(ctx, "NOSUCHCOMMAND").Err() }, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l0, f0 := late.Load(), failed.Load()
			err := tc.run()
			if got := late.Load() - l0; got != tc.wantLate {
				t.Errorf("late scripts counted: got %d, want %d (err %v)", got, tc.wantLate, err)
			}
			if got := failed.Load() - f0; got != tc.wantErrors {
				t.Errorf("errors counted: got %d, want %d (err %v)", got, tc.wantErrors, err)
			}
			if got, want := scriptdeadline.IsLate(err), tc.wantLate == 1; got != want {
				t.Errorf("IsLate(%v) = %v, want %v", err, got, want)
			}
		})
	}
}
