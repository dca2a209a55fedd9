package redisstore_test

import (
	"context"
	"errors"
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

// TestRevokeByIDAfterRefresh: the id map follows the session to its new
// token.
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
	if n := e.rdb.Exists(ctx, "sid:{"+uid+"}:"+iss.Session.ID).Val(); n != 0 {
		t.Errorf("id map entry after revocation: EXISTS %d, want 0", n)
	}
}

// TestRevocationDropsIDMap: a logout and a revocation for the cap delete
// the session's id map entry with it, where logout-all leaves the entries
// to expire (finding them would cost a read per index member); after a
// refresh, a revocation of the old token (already gone) keeps the entry,
// which names the new one.
func TestRevocationDropsIDMap(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{MaxPerUser: 2})
	ctx := context.Background()
	uid := newUserID(t)
	idMap := func(iss session.Issued) int64 {
		return e.rdb.Exists(ctx, "sid:{"+uid+"}:"+iss.Session.ID).Val()
	}

	loggedOut := create(t, e.store, uid)
	if err := e.store.Revoke(ctx, loggedOut.Token); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if n := idMap(loggedOut); n != 0 {
		t.Errorf("id map entry after logout: EXISTS %d, want 0", n)
	}

	e.clock.Advance(time.Second)
	oldest := create(t, e.store, uid)
	e.clock.Advance(time.Second)
	refreshed := create(t, e.store, uid)
	next, err := e.store.Refresh(ctx, refreshed.Token)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	wantNotFound(t, "Revoke of the refreshed session's old token", e.store.Revoke(ctx, refreshed.Token))
	if n := idMap(refreshed); n != 1 {
		t.Errorf("id map entry of a refreshed session after a revocation of its old token: EXISTS %d, want 1", n)
	}
	e.clock.Advance(time.Second)
	_, capped, err := e.store.Create(ctx, session.NewSession{UserID: uid, Username: "Alice"})
	if err != nil || capped != 1 {
		t.Fatalf("Create over the cap: capped %d, err %v; want 1, nil", capped, err)
	}
	if n := idMap(oldest); n != 0 {
		t.Errorf("id map entry of the session revoked for the cap: EXISTS %d, want 0", n)
	}

	if _, err := e.store.RevokeAll(ctx, next.Token); err != nil {
		t.Fatalf("RevokeAll: %v", err)
	}
	if n := idMap(next); n != 1 {
		t.Errorf("id map entry after logout-all: EXISTS %d, want 1 (left to expire)", n)
	}
	wantNotFound(t, "RevokeByID after logout-all", e.store.RevokeByID(ctx, create(t, e.store, uid).Token, next.Session.ID))
}

// TestIDMapExpiresWithSession: the id map entry carries the session's
// expiry, also after a touch slides it.
func TestIDMapExpiresWithSession(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{IdleTimeout: time.Hour})
	ctx := context.Background()
	uid := newUserID(t)
	iss := create(t, e.store, uid)
	e.clock.Advance(45 * time.Minute)
	lookup(t, e.store, iss.Token) // touches
	key := "sid:{" + uid + "}:" + iss.Session.ID
	got, err := e.rdb.Do(ctx, "PEXPIRETIME", key).Int64()
	if err != nil {
		t.Fatalf("PEXPIRETIME: %v", err)
	}
	if want := expireTimeMs(t, e, iss.Token); got != want {
		t.Errorf("id map entry expires at %d, want the session's %d", got, want)
	}
}

// legacySessions stores n live sessions of uid as the previous version
// did (no id map entries), created a millisecond apart before now, and
// returns their public ids and tokens, oldest first.
func legacySessions(t *testing.T, rdb redis.UniversalClient, uid string, now time.Time, n int) (ids, tokens []string) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		token := uid + (strconv.Itoa(i) + strings.Repeat("L", 43))[:43]
		member := sha256Hex(token)
		id := ("legacy" + strconv.Itoa(i) + "xxxxxxxxxxxxxxxxxxxxxx")[:22]
		ct := now.Add(-time.Minute).UnixMilli() - int64(n-i)
		exp := now.Add(time.Hour).UnixMilli()
		key := "sess:{" + uid + "}:" + member
		s := func(v int64) string { return strconv.FormatInt(v, 10) }
		rdb.HSet(ctx, key, "uid", uid, "user", "Alice", "id", id, "ct", s(ct), "seen", s(ct),
			"exp", s(exp), "abs", s(ct+24*time.Hour.Milliseconds()), "ua", "old", "ip", "127.0.0.1")
		rdb.PExpireAt(ctx, key, time.UnixMilli(exp))
		rdb.ZAdd(ctx, "i:{"+uid+"}", redis.Z{Score: float64(ct), Member: member})
		ids = append(ids, id)
		tokens = append(tokens, token)
	}
	return ids, tokens
}

// TestLegacyIndexOverTheCap: an index the previous version left with more
// live sessions than the cap is worked down by logins, a bounded slice at
// a time, to the cap newest; the sessions it held can be revoked by id
// once listed.
func TestLegacyIndexOverTheCap(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{MaxPerUser: 3})
	ctx := context.Background()
	uid := newUserID(t)
	ids, tokens := legacySessions(t, e.rdb, uid, e.clock.Now(), 10)

	list, err := e.store.List(ctx, uid)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list) != 3 || list[0].ID != ids[9] {
		t.Fatalf("List: got %d sessions, newest %+v, want the 3 newest, %s first", len(list), list, ids[9])
	}
	if err := e.store.RevokeByID(ctx, tokens[8], ids[9]); err != nil {
		t.Fatalf("RevokeByID of a listed legacy session: %v", err)
	}

	var mine []session.Issued
	for i, want := range []int64{6, 3, 3} { // index members after each login
		mine = append(mine, create(t, e.store, uid))
		e.clock.Advance(time.Millisecond)
		if got := e.rdb.ZCard(ctx, "i:{"+uid+"}").Val(); got != want {
			t.Errorf("after login %d: index members %d, want %d", i, got, want)
		}
	}
	for _, iss := range mine {
		lookup(t, e.store, iss.Token)
	}
	for i := range 9 {
		if n := e.rdb.Exists(ctx, "sess:{"+uid+"}:"+sha256Hex(tokens[i])).Val(); n != 0 {
			t.Errorf("legacy session %d is still there", i)
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

// TestRefreshOfPartialSession: a session hash without its client text
// (written by hand, or by a version that had none) refreshes as a lookup
// reads it, with the absent fields empty; one whose absolute end has
// passed is refused before anything is written.
func TestRefreshOfPartialSession(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{})
	ctx := context.Background()
	uid := newUserID(t)

	partial := create(t, e.store, uid)
	e.rdb.HDel(ctx, sessionKey(partial.Token), "ua", "ip")
	next, err := e.store.Refresh(ctx, partial.Token)
	if err != nil {
		t.Fatalf("Refresh of a session without ua and ip: %v", err)
	}
	if got := lookup(t, e.store, next.Token); got.ID != partial.Session.ID || got.UserAgent != "" || got.IP != "" {
		t.Errorf("refreshed session: got id %q, user agent %q, ip %q; want id %q and empty client text", got.ID, got.UserAgent, got.IP, partial.Session.ID)
	}

	over := create(t, e.store, uid)
	e.rdb.HSet(ctx, sessionKey(over.Token), "abs", strconv.FormatInt(e.clock.Now().Add(-time.Second).UnixMilli(), 10))
	_, err = e.store.Refresh(ctx, over.Token)
	wantNotFound(t, "Refresh of a session past its absolute end", err)
	if n := e.rdb.Exists(ctx, sessionKey(over.Token)).Val(); n != 1 {
		t.Errorf("session refused for a refresh: EXISTS %d, want 1 (nothing written)", n)
	}
}

// TestCapPastAKeyOfAnotherType: an index member whose key holds another
// type than a hash (written by hand) does not make a login over the cap
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
