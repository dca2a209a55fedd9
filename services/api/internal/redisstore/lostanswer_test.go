package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/redisstore"
	"redis-session-app/services/api/internal/redistest"
	"redis-session-app/services/api/internal/session"
)

// slowScripts is a TCP proxy in front of Redis that, while armed, holds
// back the answer to every script call (EVALSHA) for delay: Redis runs the
// script at once, and its answer arrives after the client gave up, as on
// a slow or cut path back. Every other answer passes at once.
type slowScripts struct {
	l     net.Listener
	delay time.Duration
	armed atomic.Bool
	wg    sync.WaitGroup
}

func startSlowScripts(t *testing.T, redisAddr string, delay time.Duration) *slowScripts {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &slowScripts{l: l, delay: delay}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			r, err := net.Dial("tcp", redisAddr)
			if err != nil {
				c.Close()
				continue
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.relay(c, r)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		p.wg.Wait()
	})
	return p
}

func (p *slowScripts) addr() string { return p.l.Addr().String() }

// relay copies the client's commands to Redis and Redis's answers back,
// holding an answer back when the command before it was a script's and
// the proxy is armed.
func (p *slowScripts) relay(client, redis net.Conn) {
	defer client.Close()
	defer redis.Close()
	holdNext := make(chan bool, 64)
	go func() {
		defer redis.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				hold := p.armed.Load() && bytes.Contains(bytes.ToLower(buf[:n]), []byte("evalsha"))
				select {
				case holdNext <- hold:
				default:
				}
				if _, err := redis.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := redis.Read(buf)
		if n > 0 {
			select {
			case hold := <-holdNext:
				if hold {
					time.Sleep(p.delay)
				}
			default:
			}
			if _, err := client.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestLostAnswerSettles: a write that Redis ran in time but whose answer
// was lost on the way back is answered by what happened, not with a 503
// that would claim nothing changed: the refreshed token is handed out,
// the logged-out session is gone, the new session or user is there.
func TestLostAnswerSettles(t *testing.T) {
	const timeout = 400 * time.Millisecond
	srv := redistest.Start(t)
	proxy := startSlowScripts(t, srv.Addr(), 3*timeout)
	rdb := redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{proxy.addr()}, Timeout: timeout})
	t.Cleanup(func() { _ = rdb.Close() })
	store := redisstore.NewSessions(rdb, redisstore.SessionOptions{})
	users := redisstore.NewUsers(rdb)
	ctx := context.Background()
	direct := srv.Client(t)

	alice := register(t, users, "alice")
	newSession := func() session.Issued { return create(t, store, alice.ID) }
	// Every script once while the proxy passes all, so that Redis holds
	// them all and none of the armed calls meets NOSCRIPT first.
	warm := newSession()
	if _, err := store.Refresh(ctx, warm.Token); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		store.Revoke(ctx, newSession().Token),
		store.RevokeByID(ctx, newSession().Token, newSession().Session.ID),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.RevokeAll(ctx, newSession().Token); err != nil {
		t.Fatal(err)
	}
	register(t, users, "warm")

	exists := func(key string) bool { return direct.Exists(ctx, key).Val() == 1 }
	tests := []struct {
		name string
		// write prepares, calls arm right before the write, and checks
		// that the write took effect.
		write func(t *testing.T, arm func()) error
		// calls is how many script calls the write makes (0: one),
		// each of which may take its timeout and its settling.
		calls int
	}{
		{name: "Login", write: func(t *testing.T, arm func()) error {
			arm()
			iss, _, err := store.Create(ctx, session.NewSession{UserID: alice.ID, Username: "alice"})
			if err == nil {
				lookup(t, store, iss.Token)
			}
			return err
		}},
		{name: "Refresh", write: func(t *testing.T, arm func()) error {
			old := newSession()
			arm()
			next, err := store.Refresh(ctx, old.Token)
			if err == nil {
				if got := lookup(t, store, next.Token); got.ID != old.Session.ID {
					t.Errorf("refreshed session: id %q, want %q", got.ID, old.Session.ID)
				}
				if !next.Session.ExpiresAt.After(time.Now()) {
					t.Errorf("refreshed session: expires at %v, want a time ahead", next.Session.ExpiresAt)
				}
			}
			return err
		}},
		{name: "RefreshAtTheEndOfItsBudget", write: func(t *testing.T, arm func()) error {
			// The request's budget for its store calls ends before the
			// answer could come: the settling read gets time of its own.
			old := newSession()
			budget, cancel := context.WithTimeout(ctx, timeout/2)
			defer cancel()
			arm()
			next, err := store.Refresh(budget, old.Token)
			if err == nil {
				lookup(t, store, next.Token)
			}
			return err
		}},
		{name: "Logout", write: func(t *testing.T, arm func()) error {
			iss := newSession()
			arm()
			err := store.Revoke(ctx, iss.Token)
			if err == nil && exists(sessionKey(iss.Token)) {
				t.Error("the session is still there")
			}
			return err
		}},
		{name: "RevokeByID", write: func(t *testing.T, arm func()) error {
			iss, caller := newSession(), newSession()
			arm()
			err := store.RevokeByID(ctx, caller.Token, iss.Session.ID)
			if err == nil {
				_, lerr := store.Lookup(ctx, iss.Token)
				wantNotFound(t, "Lookup of the revoked session", lerr)
			}
			return err
		}},
		{name: "LogoutAll", write: func(t *testing.T, arm func()) error {
			// A fresh user: a count of exactly its sessions.
			bob := register(t, users, "bob-"+strings.ToLower(newUserID(t)))
			first, _ := create(t, store, bob.ID), create(t, store, bob.ID)
			last := create(t, store, bob.ID)
			arm()
			n, err := store.RevokeAll(ctx, last.Token)
			if err == nil {
				_, lerr := store.Lookup(ctx, first.Token)
				wantNotFound(t, "Lookup of a session logout-all ended", lerr)
				if n != 3 {
					t.Errorf("revoked: got %d, want 3 (the receipt's count)", n)
				}
			}
			return err
		}},
		{name: "LogoutAllOverABatch", write: func(t *testing.T, arm func()) error {
			// An index over the cap (made under a higher one): 1,000
			// members of gone sessions, the oldest, before two live
			// ones. Every batch's answer is lost; each is settled by
			// its own receipt and the loop goes on.
			carol := register(t, users, "carol-"+strings.ToLower(newUserID(t)))
			first, last := create(t, store, carol.ID), create(t, store, carol.ID)
			// Added after the logins, which would have tidied them away,
			// and older than both sessions: the first call's batch.
			if err := direct.ZAdd(ctx, "i:{"+carol.ID+"}", goneMembers(carol.ID, first)...).Err(); err != nil {
				t.Fatal(err)
			}
			arm()
			n, err := store.RevokeAll(ctx, last.Token)
			if err == nil {
				for _, tok := range []string{first.Token, last.Token} {
					_, lerr := store.Lookup(ctx, tok)
					wantNotFound(t, "Lookup of a session logout-all ended", lerr)
				}
				if n != 2 {
					t.Errorf("revoked: got %d, want 2", n)
				}
			}
			return err
		}, calls: 2},
		{name: "Register", write: func(t *testing.T, arm func()) error {
			arm()
			err := users.CreateUser(ctx, session.User{Username: "bob", PasswordHash: "hash-of-bob"})
			if err == nil && !exists("user:bob") {
				t.Error("the user is not there")
			}
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var start time.Time
			arm := func() {
				proxy.armed.Store(true)
				start = time.Now()
			}
			err := tc.write(t, arm)
			took := time.Since(start)
			proxy.armed.Store(false)
			if err != nil {
				t.Fatalf("a write whose answer was lost after Redis ran it: %v, want the outcome", err)
			}
			// The contract's bound on a 503 holds for settling too,
			// per call.
			if limit := time.Duration(max(1, tc.calls)) * 2 * timeout; took > limit {
				t.Errorf("took %v, want at most %v", took, limit)
			}
		})
	}

	// A revocation whose answer was lost, of a session that a racing
	// request ended first, ran but ended nothing: it must not succeed
	// too (the session being gone is no proof that this one ran).
	directStore := redisstore.NewSessions(direct, redisstore.SessionOptions{})
	for _, tc := range []struct {
		name string
		// revoke ends iss, the session that the racing request ended;
		// caller is another live session of the same user.
		revoke func(iss, caller session.Issued) error
	}{
		{"Logout", func(iss, _ session.Issued) error { return store.Revoke(ctx, iss.Token) }},
		{"RevokeByID", func(iss, caller session.Issued) error { return store.RevokeByID(ctx, caller.Token, iss.Session.ID) }},
		{"LogoutAll", func(iss, _ session.Issued) error { _, err := store.RevokeAll(ctx, iss.Token); return err }},
	} {
		t.Run("RacedBy"+tc.name, func(t *testing.T) {
			iss, caller := newSession(), newSession()
			if err := directStore.Revoke(ctx, iss.Token); err != nil {
				t.Fatal(err)
			}
			proxy.armed.Store(true)
			err := tc.revoke(iss, caller)
			proxy.armed.Store(false)
			if err == nil {
				t.Fatal("a revocation that found its session already ended succeeded, after its answer was lost")
			}
		})
	}

	// A write that Redis never ran still fails, and changed nothing: a
	// frozen Redis answers neither the script nor the read after it.
	t.Run("NotRunStaysUnavailable", func(t *testing.T) {
		old := newSession()
		srv.Pause()
		_, err := store.Refresh(ctx, old.Token)
		srv.Resume()
		if !errors.Is(err, session.ErrUnavailable) {
			t.Fatalf("Refresh while Redis is paused: %v, want %v", err, session.ErrUnavailable)
		}
		lookup(t, store, old.Token)
	})
}

// afterScripts makes every script's answer come after delay, once Redis
// has run it.
type afterScripts struct{ delay time.Duration }

func (h afterScripts) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h afterScripts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if cmd.Name() == "evalsha" {
			time.Sleep(h.delay)
		}
		return err
	}
}

func (h afterScripts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestLogoutAllOverABatchFinishesPastTheBudget: a logout-all of an index
// over one call's batch whose first call has run finishes its other
// calls, although the request's budget runs out meanwhile: cut off
// half-way, it would answer 503 with sessions already ended.
func TestLogoutAllOverABatchFinishesPastTheBudget(t *testing.T) {
	const timeout = 400 * time.Millisecond
	e := newEnv(t, redisstore.SessionOptions{Now: time.Now})
	ctx := context.Background()
	rdb := redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{e.srv.Addr()}, Timeout: timeout})
	t.Cleanup(func() { _ = rdb.Close() })
	store := redisstore.NewSessions(rdb, redisstore.SessionOptions{})
	uid := newUserID(t)
	first, last := create(t, store, uid), create(t, store, uid)
	if err := e.rdb.ZAdd(ctx, "i:{"+uid+"}", goneMembers(uid, first)...).Err(); err != nil {
		t.Fatal(err)
	}
	// Loads the script, so that the first call under the hook is one.
	if _, err := store.RevokeAll(ctx, create(t, store, newUserID(t)).Token); err != nil {
		t.Fatal(err)
	}
	rdb.AddHook(afterScripts{delay: timeout * 3 / 8})
	// Room for the first call's script deadline (the budget less a
	// quarter timeout), none for a second's once its answer came.
	budget, cancel := context.WithTimeout(ctx, timeout/2)
	defer cancel()
	n, err := store.RevokeAll(budget, last.Token)
	if err != nil || n != 2 {
		t.Fatalf("RevokeAll past its budget: %d, %v; want 2, nil", n, err)
	}
	for _, tok := range []string{first.Token, last.Token} {
		_, err := store.Lookup(ctx, tok)
		wantNotFound(t, "Lookup after logout-all", err)
	}
}

// goneMembers are 1,000 index members of sessions that are gone, as an
// index over the cap (under a higher one, say) holds them, all older than the session oldest: one
// logout-all call's batch of its own.
func goneMembers(userID string, oldest session.Issued) []redis.Z {
	ms := oldest.Session.CreatedAt.UnixMilli()
	gone := make([]redis.Z, 1000)
	for i := range gone {
		gone[i] = redis.Z{Score: float64(ms - 2000 + int64(i)), Member: fmt.Sprintf("gone%018d", i)}
	}
	return gone
}
