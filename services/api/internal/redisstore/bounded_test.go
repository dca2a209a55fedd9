package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/redisstore"
	"redis-session-app/services/api/internal/session"
)

// TestCapCountsLiveSessionsOnly: index members whose session ended by
// itself do not count against the cap, so the oldest live session stays
// when the user is not over the cap.
func TestCapCountsLiveSessionsOnly(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{MaxPerUser: 2})
	ctx := context.Background()
	uid := newUserID(t)
	oldest := create(t, e.store, uid)
	e.clock.Advance(time.Second)
	idle := create(t, e.store, uid)
	// As if its idle timeout had passed: Redis removed the hash, the
	// index member stays.
	e.rdb.Del(ctx, sessionKey(idle.Token))
	e.clock.Advance(time.Second)

	_, capped, err := e.store.Create(ctx, session.NewSession{UserID: uid, Username: "Alice"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if capped != 0 {
		t.Errorf("capped: got %d, want 0", capped)
	}
	lookup(t, e.store, oldest.Token)
	if got, want := e.rdb.ZCard(ctx, "i:{"+uid+"}").Val(), int64(2); got != want {
		t.Errorf("index members: got %v, want %v", got, want)
	}
}

// TestDefaultCap: a zero MaxPerUser is the contract's default of 100.
func TestDefaultCap(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{})
	uid := newUserID(t)
	first := create(t, e.store, uid)
	for range 100 {
		e.clock.Advance(time.Millisecond)
		create(t, e.store, uid)
	}
	_, err := e.store.Lookup(context.Background(), first.Token)
	wantNotFound(t, "Lookup of the 101st newest session", err)
}

// TestRevokeByIDAfterRefresh: a refresh keeps the session's key and id,
// so the id revokes the session under its new token.
func TestRevokeByIDAfterRefresh(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{})
	ctx := context.Background()
	uid := newUserID(t)
	iss := create(t, e.store, uid)
	next, err := e.store.Refresh(ctx, iss.Token)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	caller := create(t, e.store, uid)
	if err := e.store.RevokeByID(ctx, caller.Token, iss.Session.ID); err != nil {
		t.Fatalf("RevokeByID: %v", err)
	}
	_, err = e.store.Lookup(ctx, next.Token)
	wantNotFound(t, "Lookup of the refreshed token", err)
	wantNotFound(t, "RevokeByID again", e.store.RevokeByID(ctx, caller.Token, iss.Session.ID))
	if got := e.rdb.ZScore(ctx, "i:{"+uid+"}", iss.Session.ID).Err(); !errors.Is(got, redis.Nil) {
		t.Errorf("index member after revocation: got %v, want %v", got, redis.Nil)
	}
}

// TestUATableBounded: the UA table holds each User-Agent once, at most
// cap + 1 entries however many distinct ones log in, expires with the
// index, and a session whose entry is gone is listed with an empty one.
func TestUATableBounded(t *testing.T) {
	const limit = 3
	e := newEnv(t, redisstore.SessionOptions{MaxPerUser: limit})
	ctx := context.Background()
	uid := newUserID(t)
	table, index := "ua:{"+uid+"}", "i:{"+uid+"}"
	for range 2 {
		if _, _, err := e.store.Create(ctx, session.NewSession{UserID: uid, Username: "Alice", UserAgent: "same"}); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
	if got := e.rdb.HLen(ctx, table).Val(); got != 1 {
		t.Errorf("UA table of two logins with one User-Agent: got %d entries, want 1", got)
	}
	for i := range 10 {
		e.clock.Advance(time.Millisecond)
		if _, _, err := e.store.Create(ctx, session.NewSession{UserID: uid, Username: "Alice", UserAgent: "agent-" + strconv.Itoa(i)}); err != nil {
			t.Fatalf("Create: %v", err)
		}
		if got := e.rdb.HLen(ctx, table).Val(); got > limit+1 {
			t.Errorf("after login %d: UA table holds %d entries, want at most %d", i, got, limit+1)
		}
	}
	list, err := e.store.List(ctx, uid)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for i, s := range list {
		if want := "agent-" + strconv.Itoa(9-i); s.UserAgent != want {
			t.Errorf("listed session %d: User-Agent %q, want %q", i, s.UserAgent, want)
		}
	}
	tableEnd := e.rdb.Do(ctx, "PEXPIRETIME", table).Val()
	if indexEnd := e.rdb.Do(ctx, "PEXPIRETIME", index).Val(); tableEnd != indexEnd {
		t.Errorf("UA table expires at %v, want the index's %v", tableEnd, indexEnd)
	}

	e.rdb.Del(ctx, table)
	list, err = e.store.List(ctx, uid)
	if err != nil {
		t.Fatalf("List without the UA table: %v", err)
	}
	if len(list) != limit || list[0].UserAgent != "" {
		t.Errorf("List without the UA table: got %+v, want %d sessions with empty User-Agents", list, limit)
	}
}

// TestIndexOverTheCap: an index left with more live sessions than the cap
// (made under a higher one) is worked down by logins, a bounded slice at
// a time, to the cap newest; a listing shows the cap newest meanwhile.
func TestIndexOverTheCap(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{MaxPerUser: 10})
	ctx := context.Background()
	uid := newUserID(t)
	var old []session.Issued
	for range 10 {
		old = append(old, create(t, e.store, uid))
		e.clock.Advance(time.Millisecond)
	}
	low := redisstore.NewSessions(e.rdb, redisstore.SessionOptions{MaxPerUser: 3, Now: e.clock.Now})

	list, err := low.List(ctx, uid)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list) != 3 || list[0].ID != old[9].Session.ID {
		t.Fatalf("List: got %d sessions, newest %+v, want the 3 newest, %s first", len(list), list, old[9].Session.ID)
	}
	if err := low.RevokeByID(ctx, old[8].Token, old[9].Session.ID); err != nil {
		t.Fatalf("RevokeByID of a listed session: %v", err)
	}

	var mine []session.Issued
	for i, want := range []int64{6, 3, 3} { // index members after each login
		mine = append(mine, create(t, low, uid))
		e.clock.Advance(time.Millisecond)
		if got := e.rdb.ZCard(ctx, "i:{"+uid+"}").Val(); got != want {
			t.Errorf("after login %d: index members %d, want %d", i, got, want)
		}
	}
	for _, iss := range mine {
		lookup(t, low, iss.Token)
	}
	for i := range 9 {
		if n := e.rdb.Exists(ctx, sessionKey(old[i].Token)).Val(); n != 0 {
			t.Errorf("old session %d is still there", i)
		}
	}
}

// TestLoweredMaxLifetime: a session older than the maximum lifetime now in
// force is over, even if it was made under a longer one.
func TestLoweredMaxLifetime(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{IdleTimeout: 24 * time.Hour, MaxLifetime: 24 * time.Hour})
	uid := newUserID(t)
	iss := create(t, e.store, uid)
	e.clock.Advance(13 * time.Hour)
	lower := redisstore.NewSessions(e.rdb, redisstore.SessionOptions{IdleTimeout: 12 * time.Hour, MaxLifetime: 12 * time.Hour, Now: e.clock.Now})
	_, err := lower.Lookup(context.Background(), iss.Token)
	wantNotFound(t, "Lookup past the lowered lifetime", err)
	_, err = lower.Refresh(context.Background(), iss.Token)
	wantNotFound(t, "Refresh past the lowered lifetime", err)
}

// TestNoTimeLeft: a context that leaves less than the margin gets
// ErrUnavailable without sending anything.
func TestNoTimeLeft(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{})
	iss := create(t, e.store, newUserID(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	time.Sleep(2 * time.Millisecond)
	if _, err := e.store.Refresh(ctx, iss.Token); !errors.Is(err, session.ErrUnavailable) {
		t.Errorf("Refresh: got %v, want %v", err, session.ErrUnavailable)
	}
	lookup(t, e.store, iss.Token)
}

// TestRefreshPastAbsoluteEnd: a session whose record says its absolute
// end has passed (Redis has not expired it yet) is refused by a refresh
// before anything is written.
func TestRefreshPastAbsoluteEnd(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{})
	ctx := context.Background()
	over := create(t, e.store, newUserID(t))
	past := e.clock.Now().Add(-time.Second).UnixMilli()
	var abs [6]byte
	for i := range abs {
		abs[i] = byte(past >> (8 * (5 - i)))
	}
	e.rdb.SetRange(ctx, sessionKey(over.Token), 35, string(abs[:])) // offset of the absolute end
	before := readKey(t, e, over.Token)
	_, err := e.store.Refresh(ctx, over.Token)
	wantNotFound(t, "Refresh of a session past its absolute end", err)
	if got := readKey(t, e, over.Token); got != before {
		t.Errorf("session refused for a refresh: record changed, want nothing written")
	}
}

// TestCorruptRecord: a session key holding anything but a record of this
// version is an unknown session to every operation, which neither fails
// nor lets anyone in.
func TestCorruptRecord(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{})
	ctx := context.Background()
	uid := newUserID(t)
	iss := create(t, e.store, uid)
	good := readKey(t, e, iss.Token)
	for _, tc := range []struct{ name, value string }{
		{"Empty", ""},
		{"OtherFormat", "\x02" + good[1:]},
		{"Truncated", good[:50]},
		{"NoUsername", good[:49] + "\x00"},
		{"UsernameLengthPastEnd", good[:49] + "\xff" + good[50:]},
		{"ZeroTime", good[:17] + "\x00\x00\x00\x00\x00\x00" + good[23:]},
		{"ZeroLastSeen", good[:23] + "\x00\x00\x00\x00\x00\x00" + good[29:]},
		{"ExpiryPastAbsoluteEnd", good[:29] + "\xff\xff\xff\xff\xff\xff" + good[35:]},
		{"AbsoluteEndAtCreation", good[:35] + good[17:23] + good[41:]},
		{"Text", strings.Repeat("x", 80)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.rdb.Set(ctx, sessionKey(iss.Token), tc.value, time.Hour)
			_, err := e.store.Lookup(ctx, iss.Token)
			wantNotFound(t, "Lookup", err)
			_, err = e.store.Refresh(ctx, iss.Token)
			wantNotFound(t, "Refresh", err)
			if got := readKey(t, e, iss.Token); got != tc.value {
				t.Errorf("Refresh of a corrupt record rewrote it, want it left as it was")
			}
			list, err := e.store.List(ctx, uid)
			if err != nil || len(list) != 0 {
				t.Errorf("List: got %+v, %v, want no sessions", list, err)
			}
		})
	}
}

// TestCapPastAKeyOfAnotherType: an index member whose key holds another
// type than a string (written by hand) does not make a login over the cap
// fail after it has stored the new session.
func TestCapPastAKeyOfAnotherType(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{MaxPerUser: 2})
	ctx := context.Background()
	uid := newUserID(t)
	odd := create(t, e.store, uid)
	e.rdb.Del(ctx, sessionKey(odd.Token))
	e.rdb.RPush(ctx, sessionKey(odd.Token), "x")
	e.clock.Advance(time.Second)
	kept := create(t, e.store, uid)
	e.clock.Advance(time.Second)
	iss, capped, err := e.store.Create(ctx, session.NewSession{UserID: uid, Username: "Alice"})
	if err != nil {
		t.Fatalf("Create over the cap: %v", err)
	}
	if capped != 1 {
		t.Errorf("capped: got %d, want 1 (the key of another type)", capped)
	}
	lookup(t, e.store, kept.Token)
	lookup(t, e.store, iss.Token)
}

// TestKeysOfAnotherType: keys of a user's that hold another type than the
// store writes (by hand, say) are no session and no outage where they hold
// a session, and where they hold the index they fail a write before it
// changes anything, since a failed write is answered 503 and a 503 must
// have changed nothing.
func TestKeysOfAnotherType(t *testing.T) {
	ctx := context.Background()
	odd := func(t *testing.T, e *env, key string) {
		t.Helper()
		e.rdb.Del(ctx, key)
		if err := e.rdb.RPush(ctx, key, "x").Err(); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("SessionKey", func(t *testing.T) {
		e := newEnv(t, redisstore.SessionOptions{})
		uid := newUserID(t)
		bad := create(t, e.store, uid)
		e.clock.Advance(time.Second)
		good := create(t, e.store, uid)
		odd(t, e, sessionKey(bad.Token))
		_, err := e.store.Lookup(ctx, bad.Token)
		wantNotFound(t, "Lookup of a key of another type", err)
		list, err := e.store.List(ctx, uid)
		if err != nil || len(list) != 1 || list[0].ID != good.Session.ID {
			t.Errorf("List beside a key of another type: got %+v, %v; want the one good session", list, err)
		}
	})
	t.Run("UATable", func(t *testing.T) {
		e := newEnv(t, redisstore.SessionOptions{})
		uid := newUserID(t)
		odd(t, e, "ua:{"+uid+"}")
		iss := create(t, e.store, uid)
		list, err := e.store.List(ctx, uid)
		if err != nil || len(list) != 1 || list[0].ID != iss.Session.ID || list[0].UserAgent != "" {
			t.Errorf("List with a UA table of another type: got %+v, %v; want the session, without its User-Agent", list, err)
		}
	})
	t.Run("Index", func(t *testing.T) {
		e := newEnv(t, redisstore.SessionOptions{})
		uid := newUserID(t)
		a := create(t, e.store, uid)
		b := create(t, e.store, uid)
		odd(t, e, "i:{"+uid+"}")
		keys := func() []string {
			ks, err := e.rdb.Keys(ctx, "s:{"+uid+"}:*").Result()
			if err != nil {
				t.Fatal(err)
			}
			return ks
		}
		before := keys()
		if _, _, err := e.store.Create(ctx, session.NewSession{UserID: uid, Username: "Alice"}); err == nil {
			t.Errorf("Create with an index of another type: succeeded, want an error")
		}
		if err := e.store.Revoke(ctx, a.Token); err == nil {
			t.Errorf("Revoke with an index of another type: succeeded, want an error")
		}
		if err := e.store.RevokeByID(ctx, a.Token, b.Session.ID); err == nil {
			t.Errorf("RevokeByID with an index of another type: succeeded, want an error")
		}
		if _, err := e.store.RevokeAll(ctx, a.Token); err == nil {
			t.Errorf("RevokeAll with an index of another type: succeeded, want an error")
		}
		if got := keys(); len(got) != len(before) {
			t.Errorf("session keys after the failed writes: %v, want %v (nothing changed)", got, before)
		}
		lookup(t, e.store, a.Token)
		lookup(t, e.store, b.Token)
	})
}

// TestLoginEndsSessionsPastTheLifetime: a login drops the sessions past
// the absolute lifetime, by its own clock, from the index and from Redis
// both, and keeps the live ones listed and reachable by logout-all. A
// replica whose clock runs behind (here one second) must not go on
// serving a session that the index no longer holds.
func TestLoginEndsSessionsPastTheLifetime(t *testing.T) {
	const life = 24 * time.Hour
	ctx := context.Background()
	e := newEnv(t, redisstore.SessionOptions{IdleTimeout: life, MaxLifetime: life})
	ahead := redisstore.NewSessions(e.rdb, redisstore.SessionOptions{IdleTimeout: life, MaxLifetime: life,
		Now: func() time.Time { return e.clock.Now().Add(time.Second) }})
	uid := newUserID(t)
	old := create(t, e.store, uid)
	e.clock.Advance(time.Hour)
	live := create(t, e.store, uid)
	// Half a second of the old session's lifetime is left by this clock,
	// none by the one ahead.
	e.clock.Advance(life - time.Hour - 500*time.Millisecond)
	lookup(t, e.store, old.Token)
	caller := create(t, ahead, uid)

	_, err := e.store.Lookup(ctx, old.Token)
	wantNotFound(t, "Lookup of a session a login found past its lifetime", err)
	list, err := e.store.List(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	if want := []string{caller.Session.ID, live.Session.ID}; !slices.Equal(ids, want) {
		t.Errorf("listing: %v, want %v (the new and the live session)", ids, want)
	}
	if n, err := e.store.RevokeAll(ctx, caller.Token); err != nil || n != 2 {
		t.Errorf("RevokeAll: %d, %v; want 2, nil", n, err)
	}
	_, err = e.store.Lookup(ctx, live.Token)
	wantNotFound(t, "Lookup of the live session after logout-all", err)
}

// TestLogoutAllOfTheOldestSessionOverABatch: a logout-all whose caller is
// the oldest session of an index over one call's batch ends every
// session: the calls after the first, which ended the caller's own, do
// not check it again.
func TestLogoutAllOfTheOldestSessionOverABatch(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{})
	ctx := context.Background()
	uid := newUserID(t)
	caller := create(t, e.store, uid)
	e.clock.Advance(10 * time.Second)
	newest := create(t, e.store, uid)
	ms := caller.Session.CreatedAt.UnixMilli()
	gone := make([]redis.Z, 1000)
	for i := range gone {
		gone[i] = redis.Z{Score: float64(ms + 1 + int64(i)), Member: fmt.Sprintf("gone%018d", i)}
	}
	if err := e.rdb.ZAdd(ctx, "i:{"+uid+"}", gone...).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := e.store.RevokeAll(ctx, caller.Token); err != nil || n != 2 {
		t.Fatalf("RevokeAll by the oldest session: %d, %v; want 2, nil", n, err)
	}
	_, err := e.store.Lookup(ctx, newest.Token)
	wantNotFound(t, "Lookup of the newest session after logout-all", err)
}

// TestRefreshUnderALoweredLifetime: a refresh by a replica that runs a
// lower SESSION_MAX_LIFETIME counts it from the creation, not from the
// last use, and answers the ends it allows.
func TestRefreshUnderALoweredLifetime(t *testing.T) {
	ctx := context.Background()
	t.Run("Past", func(t *testing.T) {
		e := newEnv(t, redisstore.SessionOptions{IdleTimeout: time.Hour, MaxLifetime: 24 * time.Hour})
		iss := create(t, e.store, newUserID(t))
		e.clock.Advance(40 * time.Minute)
		if s := lookup(t, e.store, iss.Token); !s.LastSeenAt.After(iss.Session.CreatedAt) {
			t.Fatalf("the lookup did not touch the session")
		}
		e.clock.Advance(10 * time.Minute)
		lowered := redisstore.NewSessions(e.rdb, redisstore.SessionOptions{IdleTimeout: time.Hour, MaxLifetime: 45 * time.Minute, Now: e.clock.Now})
		_, err := lowered.Refresh(ctx, iss.Token)
		wantNotFound(t, "Refresh past the lowered lifetime, seen 10 minutes ago", err)
	})
	t.Run("Within", func(t *testing.T) {
		e := newEnv(t, redisstore.SessionOptions{IdleTimeout: 24 * time.Hour, MaxLifetime: 24 * time.Hour})
		iss := create(t, e.store, newUserID(t))
		e.clock.Advance(90 * time.Minute)
		lowered := redisstore.NewSessions(e.rdb, redisstore.SessionOptions{IdleTimeout: time.Hour, MaxLifetime: 2 * time.Hour, Now: e.clock.Now})
		got, err := lowered.Refresh(ctx, iss.Token)
		if err != nil {
			t.Fatal(err)
		}
		end := iss.Session.CreatedAt.Add(2 * time.Hour)
		if got.Session.AbsoluteExpiresAt.After(end) || got.Session.ExpiresAt.After(end) {
			t.Errorf("refreshed ends %v and %v, want at most %v", got.Session.ExpiresAt, got.Session.AbsoluteExpiresAt, end)
		}
	})
}

// TestTouchNeverShortens: of two replicas whose clocks differ by ten
// minutes, both due to touch one session, the touch of the one behind,
// whose read came before the other's touch, does not write an expiry
// earlier than the one ahead wrote.
func TestTouchNeverShortens(t *testing.T) {
	const idle = time.Hour
	base := time.Now()
	at := func(d time.Duration) func() time.Time { return func() time.Time { return base.Add(d) } }
	e := newEnv(t, redisstore.SessionOptions{IdleTimeout: idle, Now: at(0)})
	ahead := redisstore.NewSessions(e.rdb, redisstore.SessionOptions{IdleTimeout: idle, Now: at(50 * time.Minute)})
	rdb := redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{e.srv.Addr()}, Timeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	behind := redisstore.NewSessions(rdb, redisstore.SessionOptions{IdleTimeout: idle, Now: at(40 * time.Minute)})
	iss := create(t, e.store, newUserID(t))
	want := ms(base.Add(50*time.Minute + idle))
	rdb.AddHook(&refreshBeforeScript{refresh: func(ctx context.Context) error {
		s, err := ahead.Lookup(ctx, iss.Token)
		if err == nil && !s.ExpiresAt.Equal(want) {
			t.Errorf("the replica ahead touched to %v, want %v", s.ExpiresAt, want)
		}
		return err
	}})
	lookup(t, behind, iss.Token)
	if got := lookup(t, ahead, iss.Token); got.ExpiresAt.Before(want) {
		t.Errorf("expiry %v after both touches, want no earlier than %v", got.ExpiresAt, want)
	}
	if got := expireTimeMs(t, e, iss.Token); got < want.UnixMilli() {
		t.Errorf("Redis expiry %d after both touches, want no earlier than %d", got, want.UnixMilli())
	}
}
