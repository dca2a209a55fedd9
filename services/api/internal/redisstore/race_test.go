package redisstore_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"redis-session-app/services/api/internal/redisstore"
	"redis-session-app/services/api/internal/session"
)

// TestRevokeWinsAgainstTouch runs lookups that all want to slide the expiry
// while another goroutine revokes the session: once Revoke has returned,
// the key must stay gone and no lookup that starts afterwards may succeed.
func TestRevokeWinsAgainstTouch(t *testing.T) {
	const (
		rounds  = 20
		readers = 8
	)
	const idle = time.Hour
	// The clock always reads a quarter of the idle window before the
	// latest expiry any lookup has seen: a lookup of the current record
	// is then due to touch, so touches and the revocation really race.
	var latest atomic.Int64 // Unix ms
	now := func() time.Time { return time.UnixMilli(latest.Load()).Add(-idle / 4) }
	seen := func(exp time.Time) {
		for {
			cur := latest.Load()
			if exp.UnixMilli() <= cur || latest.CompareAndSwap(cur, exp.UnixMilli()) {
				return
			}
		}
	}
	latest.Store(time.Now().Add(idle).UnixMilli())
	e := newEnv(t, redisstore.SessionOptions{IdleTimeout: idle, MaxLifetime: 10 * 365 * 24 * time.Hour, Now: now})
	ctx := context.Background()
	uid := newUserID(t)
	e.srv.ResetStats(t)

	for round := range rounds {
		iss := create(t, e.store, uid)
		seen(iss.Session.ExpiresAt)
		var (
			revoked     atomic.Bool
			found       atomic.Int64
			wg          sync.WaitGroup
			start       = make(chan struct{})
			warm        = make(chan struct{}) // closed after enough lookups found the session
			once        sync.Once
			readersDone sync.WaitGroup
		)
		for range readers {
			readersDone.Add(1)
			wg.Go(func() {
				defer readersDone.Done()
				<-start
				for range 25 {
					after := revoked.Load()
					sess, err := e.store.Lookup(ctx, iss.Token)
					switch {
					case err == nil:
						seen(sess.ExpiresAt)
						if found.Add(1) == readers*5 {
							once.Do(func() { close(warm) })
						}
						if after {
							t.Errorf("round %d: Lookup started after Revoke returned found the session", round)
						}
					case !errors.Is(err, session.ErrNotFound):
						t.Errorf("round %d: Lookup: %v", round, err)
					}
				}
			})
		}
		wg.Go(func() {
			// Revoke in the middle of the lookups, not before they start.
			allDone := make(chan struct{})
			go func() { readersDone.Wait(); close(allDone) }()
			select {
			case <-warm:
			case <-allDone:
			}
			if err := e.store.Revoke(ctx, iss.Token); err != nil {
				t.Errorf("round %d: Revoke: %v", round, err)
			}
			revoked.Store(true)
		})
		close(start)
		wg.Wait()
		if found.Load() < readers*5 {
			t.Fatalf("round %d: lookups that found the session: got %v, want at least %v", round, found.Load(), readers*5)
		}

		if n := e.rdb.Exists(ctx, sessionKey(iss.Token)).Val(); n != 0 {
			t.Fatalf("round %d: EXISTS after Revoke: got %v, want 0", round, n)
		}
		_, err := e.store.Lookup(ctx, iss.Token)
		wantNotFound(t, "Lookup after Revoke", err)
	}
	// The test only means something if lookups did race with touches.
	if got, want := e.srv.CommandStats(t)["evalsha"], int64(rounds*readers*5); got < want {
		t.Errorf("scripts run (touches and revokes): got %v, want at least %v", got, want)
	}
}

// TestConcurrentRefresh refreshes one token from many goroutines at once:
// exactly one gets a new token, the others find the old one gone.
func TestConcurrentRefresh(t *testing.T) {
	const workers = 16
	e := newEnv(t, redisstore.SessionOptions{})
	ctx := context.Background()
	uid := newUserID(t)

	for round := range 10 {
		iss := create(t, e.store, uid)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners []session.Issued
			start   = make(chan struct{})
		)
		for range workers {
			wg.Go(func() {
				<-start
				got, err := e.store.Refresh(ctx, iss.Token)
				switch {
				case err == nil:
					mu.Lock()
					winners = append(winners, got)
					mu.Unlock()
				case !errors.Is(err, session.ErrNotFound):
					t.Errorf("round %d: Refresh: %v", round, err)
				}
			})
		}
		close(start)
		wg.Wait()

		if len(winners) != 1 {
			t.Fatalf("round %d: successful refreshes: got %v, want 1", round, len(winners))
		}
		if got := lookup(t, e.store, winners[0].Token); got.ID != iss.Session.ID {
			t.Errorf("round %d: id after refresh: got %v, want %v", round, got.ID, iss.Session.ID)
		}
		_, err := e.store.Lookup(ctx, iss.Token)
		wantNotFound(t, "Lookup of the old token", err)
		if err := e.store.Revoke(ctx, winners[0].Token); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
	}
	if got := e.rdb.ZCard(ctx, "i:{"+uid+"}").Val(); got != 0 {
		t.Errorf("index members left: got %v, want 0", got)
	}
}
