package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/redisstore"
	"redis-session-app/services/api/internal/redistest"
	"redis-session-app/services/api/internal/session"
)

// clock is a settable clock for SessionOptions.Now. It starts at the real
// time, because Redis expires keys by its own clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a store on a redis-server of its own.
type env struct {
	srv   *redistest.Server
	rdb   redis.UniversalClient
	store *redisstore.Sessions
	users *redisstore.Users
	clock *clock
}

func newEnv(t *testing.T, o redisstore.SessionOptions) *env {
	t.Helper()
	srv := redistest.Start(t)
	rdb := redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr()}, Timeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	e := &env{srv: srv, rdb: rdb, users: redisstore.NewUsers(rdb)}
	if o.Now == nil {
		e.clock = newClock()
		o.Now = e.clock.Now
	}
	e.store = redisstore.NewSessions(rdb, o)
	return e
}

func newUserID(t testing.TB) string {
	t.Helper()
	id, err := redisstore.NewUserID()
	if err != nil {
		t.Fatalf("NewUserID: %v", err)
	}
	return id
}

// register stores a user named name and reads it back by a differently
// cased name, so its id is the one the store made.
func register(t testing.TB, users *redisstore.Users, name string) session.User {
	t.Helper()
	ctx := context.Background()
	if err := users.CreateUser(ctx, session.User{Username: name, PasswordHash: "h"}); err != nil {
		t.Fatalf("CreateUser(%q): %v", name, err)
	}
	u, err := users.UserByName(ctx, strings.ToUpper(name))
	if err != nil {
		t.Fatalf("UserByName(%q): %v", strings.ToUpper(name), err)
	}
	return u
}

func create(t testing.TB, s *redisstore.Sessions, userID string) session.Issued {
	t.Helper()
	iss, _, err := s.Create(context.Background(), session.NewSession{UserID: userID, Username: "Alice", UserAgent: "test-agent", IP: "127.0.0.1"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return iss
}

func lookup(t testing.TB, s *redisstore.Sessions, token string) session.Session {
	t.Helper()
	sess, err := s.Lookup(context.Background(), token)
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	return sess
}

func wantNotFound(t testing.TB, what string, err error) {
	t.Helper()
	if !errors.Is(err, session.ErrNotFound) {
		t.Errorf("%s: got error %v, want %v", what, err, session.ErrNotFound)
	}
}
