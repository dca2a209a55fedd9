package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/poll"
	"redis-session-app/services/api/internal/redisstore"
	"redis-session-app/services/api/internal/session"
)

func TestCreateLookup(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{IdleTimeout: time.Hour, MaxLifetime: 24 * time.Hour})
	ctx := context.Background()
	uid := newUserID(t)
	long := strings.Repeat("é", 400) // 800 bytes

	tests := []struct {
		name   string
		in     session.NewSession
		wantUA string
	}{
		{"OK", session.NewSession{UserID: uid, Username: "Alice", UserAgent: "curl/8", IP: "192.0.2.1"}, "curl/8"},
		{"EmptyAgentAndIP", session.NewSession{UserID: uid, Username: "Alice"}, ""},
		{"LongAgentTruncated", session.NewSession{UserID: uid, Username: "Alice", UserAgent: long, IP: "::1"}, long[:512]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := e.clock.Now()
			iss, capped, err := e.store.Create(ctx, tc.in)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if capped != 0 {
				t.Errorf("capped: got %v, want 0", capped)
			}
			if got, want := len(iss.Token), 76; got != want {
				t.Errorf("token length: got %v, want %v", got, want)
			}
			if !session.ValidToken(iss.Token) {
				t.Errorf("ValidToken(%q): got false, want true", iss.Token)
			}
			if !strings.HasPrefix(iss.Token, uid) {
				t.Errorf("token %q does not start with the user id %q", iss.Token, uid)
			}
			// The token is the user id, the public id and the secret.
			if got := iss.Token[11:33]; iss.Session.ID == "" || got != iss.Session.ID {
				t.Errorf("public id %q: empty or not the token's, %q", iss.Session.ID, got)
			}
			want := session.Session{
				ID:                iss.Session.ID,
				UserID:            uid,
				Username:          "Alice",
				CreatedAt:         time.UnixMilli(now.UnixMilli()).UTC(),
				LastSeenAt:        time.UnixMilli(now.UnixMilli()).UTC(),
				ExpiresAt:         time.UnixMilli(now.Add(time.Hour).UnixMilli()).UTC(),
				AbsoluteExpiresAt: time.UnixMilli(now.Add(24 * time.Hour).UnixMilli()).UTC(),
				UserAgent:         tc.wantUA,
				IP:                tc.in.IP,
			}
			if iss.Session != want {
				t.Errorf("created session:\ngot  %+v\nwant %+v", iss.Session, want)
			}
			// A lookup leaves the User-Agent out: the record holds only its
			// reference.
			want.UserAgent = ""
			if got := lookup(t, e.store, iss.Token); got != want {
				t.Errorf("looked up session:\ngot  %+v\nwant %+v", got, want)
			}
			listed, err := e.store.List(ctx, uid)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			i := slices.IndexFunc(listed, func(s session.Session) bool { return s.ID == iss.Session.ID })
			if i < 0 || listed[i].UserAgent != tc.wantUA {
				t.Errorf("listed: got %+v, want %q with User-Agent %q", listed, iss.Session.ID, tc.wantUA)
			}
		})
	}
}

func TestLookupUnknown(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{})
	iss := create(t, e.store, newUserID(t))
	tests := []struct {
		name  string
		token string
	}{
		{"Empty", ""},
		{"TooShort", "abc"},
		{"BadCharacters", strings.Repeat("{", 40)},
		{"WellFormedUnknown", strings.Repeat("A", 76)},
		{"OldShape", iss.Token[:11] + iss.Token[33:]},
		{"OtherSecretSameSession", iss.Token[:33] + strings.Repeat("x", 43)},
		{"OtherSecretOneByteOff", iss.Token[:75] + otherByte(iss.Token[75])},
		{"OtherUserSameSession", strings.Repeat("A", 11) + iss.Token[11:]},
		{"Truncated", iss.Token[:75]},
		{"Extended", iss.Token + "A"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.store.Lookup(context.Background(), tc.token)
			wantNotFound(t, "Lookup", err)
		})
	}
}

func TestLookupMalformedTokenMakesNoCall(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{})
	e.srv.ResetStats(t)
	for _, tok := range []string{"", "short", strings.Repeat("!", 30), strings.Repeat("a", 129)} {
		_, err := e.store.Lookup(context.Background(), tok)
		wantNotFound(t, "Lookup", err)
	}
	if got := dataCalls(e.srv.CommandStats(t)); got != 0 {
		t.Errorf("commands sent: got %v, want 0", got)
	}
}

// dataCalls counts the commands of the store, leaving out those of the test
// harness itself.
func dataCalls(stats map[string]int64) int64 {
	var n int64
	for name, calls := range stats {
		switch name {
		case "info", "config|resetstat", "hello", "client|setinfo", "ping":
		default:
			n += calls
		}
	}
	return n
}

func TestLookupIsOneCommandWhenNoTouchIsDue(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{IdleTimeout: time.Hour})
	iss := create(t, e.store, newUserID(t))
	e.clock.Advance(29 * time.Minute)
	e.srv.ResetStats(t)
	lookup(t, e.store, iss.Token)
	stats := e.srv.CommandStats(t)
	if got, want := stats["get"], int64(1); got != want {
		t.Errorf("GET calls: got %v, want %v", got, want)
	}
	if got, want := dataCalls(stats), int64(1); got != want {
		t.Errorf("commands sent: got %v (%v), want %v", got, stats, want)
	}
}

func TestLookupSliding(t *testing.T) {
	const idle = time.Hour
	e := newEnv(t, redisstore.SessionOptions{IdleTimeout: idle, MaxLifetime: 24 * time.Hour})
	iss := create(t, e.store, newUserID(t))
	created := iss.Session.ExpiresAt

	steps := []struct {
		name     string
		advance  time.Duration
		wantExp  func(now time.Time) time.Time
		wantSeen func(now time.Time) time.Time
	}{
		{"FirstHalfDoesNotWrite", 10 * time.Minute,
			func(time.Time) time.Time { return created },
			func(time.Time) time.Time { return iss.Session.CreatedAt }},
		{"StillFirstHalf", 19*time.Minute + 59*time.Second,
			func(time.Time) time.Time { return created },
			func(time.Time) time.Time { return iss.Session.CreatedAt }},
		{"SecondHalfSlides", 2 * time.Second,
			func(now time.Time) time.Time { return ms(now.Add(idle)) },
			func(now time.Time) time.Time { return ms(now) }},
		{"RightAfterSlideDoesNotWrite", time.Minute,
			func(now time.Time) time.Time { return ms(now.Add(idle - time.Minute)) },
			func(now time.Time) time.Time { return ms(now.Add(-time.Minute)) }},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			e.clock.Advance(st.advance)
			now := e.clock.Now()
			got := lookup(t, e.store, iss.Token)
			if want := st.wantExp(now); !got.ExpiresAt.Equal(want) {
				t.Errorf("ExpiresAt: got %v, want %v", got.ExpiresAt, want)
			}
			if want := st.wantSeen(now); !got.LastSeenAt.Equal(want) {
				t.Errorf("LastSeenAt: got %v, want %v", got.LastSeenAt, want)
			}
			// What the next lookup reads back must agree with what this
			// one returned, and the key must expire exactly then.
			again := lookup(t, e.store, iss.Token)
			if !again.ExpiresAt.Equal(got.ExpiresAt) {
				t.Errorf("ExpiresAt read back: got %v, want %v", again.ExpiresAt, got.ExpiresAt)
			}
			if got, want := expireTimeMs(t, e, iss.Token), got.ExpiresAt.UnixMilli(); got != want {
				t.Errorf("PEXPIRETIME: got %v, want %v", got, want)
			}
		})
	}
}

func TestLookupAbsoluteCap(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{IdleTimeout: time.Hour, MaxLifetime: 90 * time.Minute})
	iss := create(t, e.store, newUserID(t))
	abs := iss.Session.AbsoluteExpiresAt

	for _, advance := range []time.Duration{40 * time.Minute, 20 * time.Minute, 20 * time.Minute, 9 * time.Minute} {
		e.clock.Advance(advance)
		got := lookup(t, e.store, iss.Token)
		if got.ExpiresAt.After(abs) {
			t.Errorf("after %v: ExpiresAt %v is past the absolute end %v", advance, got.ExpiresAt, abs)
		}
		if got, want := got.AbsoluteExpiresAt, abs; !got.Equal(want) {
			t.Errorf("AbsoluteExpiresAt: got %v, want %v", got, want)
		}
		if got := expireTimeMs(t, e, iss.Token); got > abs.UnixMilli() {
			t.Errorf("PEXPIRETIME: got %v, past the absolute end %v", got, abs.UnixMilli())
		}
		// Redis counts in whole milliseconds: allow for its rounding.
		left := time.Until(abs) + 2*time.Millisecond
		if pttl := e.rdb.PTTL(context.Background(), sessionKey(iss.Token)).Val(); pttl > left {
			t.Errorf("PTTL: got %v, more than the %v left until the absolute end", pttl, left)
		}
	}
	// At the clock's 89th minute, the session ends with its absolute end.
	if got := lookup(t, e.store, iss.Token).ExpiresAt; !got.Equal(abs) {
		t.Errorf("ExpiresAt near the end: got %v, want %v", got, abs)
	}
	e.clock.Advance(time.Minute)
	_, err := e.store.Lookup(context.Background(), iss.Token)
	wantNotFound(t, "Lookup at the absolute end", err)

	_, err = e.store.Refresh(context.Background(), iss.Token)
	wantNotFound(t, "Refresh at the absolute end", err)
}

func TestIdleExpiry(t *testing.T) {
	// Long enough that a loaded machine running the race detector still
	// gets a lookup in within half of it.
	const idle = 600 * time.Millisecond
	e := newEnv(t, redisstore.SessionOptions{IdleTimeout: idle, Now: time.Now})
	ctx := context.Background()
	iss := create(t, e.store, newUserID(t))

	// Used more often than the idle timeout, the session stays alive for
	// longer than it.
	for end := time.Now().Add(2 * idle); time.Now().Before(end); time.Sleep(idle / 12) {
		lookup(t, e.store, iss.Token)
	}

	// Left alone, Redis ends it by itself. Polling EXISTS, not Lookup:
	// lookups would slide the expiry.
	last := time.Now()
	lookup(t, e.store, iss.Token)
	poll.For(t, 3*time.Second, "session expires when idle", func() bool {
		return e.rdb.Exists(ctx, sessionKey(iss.Token)).Val() == 0
	})
	// The last lookup left at least half the idle window.
	if elapsed := time.Since(last); elapsed < idle/2 {
		t.Errorf("session ended %v after its last use, want at least %v", elapsed, idle/2)
	}
	_, err := e.store.Lookup(ctx, iss.Token)
	wantNotFound(t, "Lookup after idle expiry", err)
}

func TestRefresh(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{IdleTimeout: time.Hour, MaxLifetime: 24 * time.Hour})
	ctx := context.Background()
	uid := newUserID(t)
	iss := create(t, e.store, uid)
	e.clock.Advance(5 * time.Minute)
	now := e.clock.Now()

	got, err := e.store.Refresh(ctx, iss.Token)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if got.Token == iss.Token || !session.ValidToken(got.Token) || len(got.Token) != 76 || got.Token[:33] != iss.Token[:33] {
		t.Errorf("new token %q: same as the old one, malformed or of another session key than %q", got.Token, iss.Token)
	}
	want := iss.Session
	want.LastSeenAt = ms(now)
	want.ExpiresAt = ms(now.Add(time.Hour))
	if got.Session != want {
		t.Errorf("refreshed session:\ngot  %+v\nwant %+v", got.Session, want)
	}
	want.UserAgent = "" // a lookup leaves it out
	if looked := lookup(t, e.store, got.Token); looked != want {
		t.Errorf("looked up after refresh:\ngot  %+v\nwant %+v", looked, want)
	}
	_, err = e.store.Lookup(ctx, iss.Token)
	wantNotFound(t, "Lookup of the old token", err)
	_, err = e.store.Refresh(ctx, iss.Token)
	wantNotFound(t, "Refresh of the old token", err)

	list, err := e.store.List(ctx, uid)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list) != 1 || list[0].ID != iss.Session.ID {
		t.Errorf("List after refresh: got %+v, want the one session %v", list, iss.Session.ID)
	}
	if got, want := e.rdb.ZCard(ctx, "i:{"+uid+"}").Val(), int64(1); got != want {
		t.Errorf("index members: got %v, want %v", got, want)
	}
	if got, want := expireTimeMs(t, e, got.Token), want.ExpiresAt.UnixMilli(); got != want {
		t.Errorf("PEXPIRETIME of the new key: got %v, want %v", got, want)
	}

	_, err = e.store.Refresh(ctx, "bad")
	wantNotFound(t, "Refresh of a malformed token", err)

	// Over by this replica's clock, though Redis, by its own, still has it.
	idle := create(t, e.store, uid)
	e.clock.Advance(time.Hour)
	_, err = e.store.Refresh(ctx, idle.Token)
	wantNotFound(t, "Refresh of an idle-expired session", err)
	if n := e.rdb.Exists(ctx, sessionKey(idle.Token)).Val(); n != 1 {
		t.Fatalf("EXISTS of the idle-expired session: got %v, want 1 (Redis's clock is behind)", n)
	}
}

func TestRevoke(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{})
	ctx := context.Background()
	uid := newUserID(t)
	iss := create(t, e.store, uid)
	other := create(t, e.store, uid)

	if err := e.store.Revoke(ctx, iss.Token); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	_, err := e.store.Lookup(ctx, iss.Token)
	wantNotFound(t, "Lookup after Revoke", err)
	wantNotFound(t, "second Revoke", e.store.Revoke(ctx, iss.Token))
	wantNotFound(t, "Revoke of a malformed token", e.store.Revoke(ctx, "x"))
	lookup(t, e.store, other.Token)
	if got, want := e.rdb.ZCard(ctx, "i:{"+uid+"}").Val(), int64(1); got != want {
		t.Errorf("index members: got %v, want %v", got, want)
	}
}

func TestRevokeAll(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{})
	ctx := context.Background()
	alice, bob := newUserID(t), newUserID(t)
	var tokens []string
	for range 3 {
		tokens = append(tokens, create(t, e.store, alice).Token)
	}
	bobs := create(t, e.store, bob)
	// A session already revoked is not counted again.
	if err := e.store.Revoke(ctx, tokens[0]); err != nil {
		t.Fatalf("Revoke: %v", err)
	}

	// Only a live session of the user ends them all; a revoked one, even
	// the very one that just did, is refused like an unknown token.
	tests := []struct {
		name    string
		token   string
		want    int
		refused bool
	}{
		{"RevokedCaller", tokens[0], 0, true},
		{"OK", tokens[1], 2, false},
		{"Again", tokens[1], 0, true},
		{"OtherOfThem", tokens[2], 0, true},
		{"Unknown", newUserID(t) + strings.Repeat("A", 65), 0, true},
		{"Malformed", "{x}", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.store.RevokeAll(ctx, tc.token)
			switch {
			case tc.refused:
				wantNotFound(t, "RevokeAll", err)
			case err != nil:
				t.Fatalf("RevokeAll: %v", err)
			}
			if got != tc.want {
				t.Errorf("revoked: got %v, want %v", got, tc.want)
			}
		})
	}
	for _, tok := range tokens {
		_, err := e.store.Lookup(ctx, tok)
		wantNotFound(t, "Lookup after RevokeAll", err)
	}
	lookup(t, e.store, bobs.Token)
	if n := e.rdb.Exists(ctx, "i:{"+alice+"}").Val(); n != 0 {
		t.Errorf("EXISTS of the index: got %v, want 0", n)
	}
}

func TestRevokeByID(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{})
	ctx := context.Background()
	alice, bob := newUserID(t), newUserID(t)
	a1, a2, a3 := create(t, e.store, alice), create(t, e.store, alice), create(t, e.store, alice)
	b1 := create(t, e.store, bob)
	gone := create(t, e.store, alice)
	if err := e.store.Revoke(ctx, gone.Token); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		caller  string // token
		id      string
		wantErr error
	}{
		{"OtherUsersID", a2.Token, b1.Session.ID, session.ErrNotFound},
		{"UnknownID", a2.Token, "nope", session.ErrNotFound},
		{"EmptyID", a2.Token, "", session.ErrNotFound},
		{"MalformedCaller", "bad", a1.Session.ID, session.ErrCallerGone},
		{"TokenIsNotAnID", a2.Token, a1.Token, session.ErrNotFound},
		// A revoked token revokes nothing: two sessions revoking each
		// other at once would otherwise both succeed.
		{"RevokedCaller", gone.Token, a1.Session.ID, session.ErrCallerGone},
		{"OK", a2.Token, a1.Session.ID, nil},
		{"AlreadyRevoked", a2.Token, a1.Session.ID, session.ErrNotFound},
		{"RevokedByTheSessionItRevoked", a1.Token, a3.Session.ID, session.ErrCallerGone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := e.store.RevokeByID(ctx, tc.caller, tc.id)
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("RevokeByID: got %v, want %v", err, tc.wantErr)
			}
		})
	}
	_, err := e.store.Lookup(ctx, a1.Token)
	wantNotFound(t, "Lookup of the revoked session", err)
	lookup(t, e.store, a2.Token)
	lookup(t, e.store, a3.Token)
	lookup(t, e.store, b1.Token)
}

func TestList(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{IdleTimeout: time.Hour})
	ctx := context.Background()
	uid := newUserID(t)
	var want []string
	for i := range 3 {
		iss, _, err := e.store.Create(ctx, session.NewSession{UserID: uid, Username: "Alice", UserAgent: fmt.Sprint("agent-", i), IP: "127.0.0.1"})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		want = append([]string{iss.Session.ID}, want...)
		e.clock.Advance(time.Second)
	}
	create(t, e.store, newUserID(t)) // another user's

	// A short-lived session of the same user, made by a store with another
	// idle timeout, goes stale in the index once it expires.
	short := redisstore.NewSessions(e.rdb, redisstore.SessionOptions{IdleTimeout: 100 * time.Millisecond, Now: time.Now})
	stale := create(t, short, uid)
	poll.For(t, 3*time.Second, "short session expires", func() bool {
		return e.rdb.Exists(ctx, sessionKey(stale.Token)).Val() == 0
	})
	idx := "i:{" + uid + "}"
	if got, want := e.rdb.ZCard(ctx, idx).Val(), int64(4); got != want {
		t.Fatalf("index members before List: got %v, want %v", got, want)
	}

	list, err := e.store.List(ctx, uid)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var got []string
	for _, s := range list {
		got = append(got, s.ID)
		if s.UserID != uid || s.Username != "Alice" || s.IP != "127.0.0.1" || !strings.HasPrefix(s.UserAgent, "agent-") {
			t.Errorf("listed session: got %+v", s)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("listed ids: got %v, want %v (newest first)", got, want)
	}
	if got, want := e.rdb.ZCard(ctx, idx).Val(), int64(3); got != want {
		t.Errorf("index members after List: got %v, want %v (stale one pruned)", got, want)
	}

	for _, uid := range []string{newUserID(t), "bad"} {
		list, err := e.store.List(ctx, uid)
		if err != nil || len(list) != 0 {
			t.Errorf("List(%q): got %v, %v, want no sessions", uid, list, err)
		}
	}
}

func TestMaxPerUser(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{MaxPerUser: 2})
	ctx := context.Background()
	uid := newUserID(t)
	var issued []session.Issued
	wantCapped := []int{0, 0, 1, 1}
	for i, want := range wantCapped {
		iss, capped, err := e.store.Create(ctx, session.NewSession{UserID: uid, Username: "Alice"})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if capped != want {
			t.Errorf("Create %d: capped %v, want %v", i, capped, want)
		}
		issued = append(issued, iss)
		e.clock.Advance(time.Second)
	}
	for i, iss := range issued {
		_, err := e.store.Lookup(ctx, iss.Token)
		if live := i >= 2; live != (err == nil) {
			t.Errorf("session %d: Lookup error %v, want live %v", i, err, live)
		}
	}
	if got, want := e.rdb.ZCard(ctx, "i:{"+uid+"}").Val(), int64(2); got != want {
		t.Errorf("index members: got %v, want %v", got, want)
	}
}

func TestCreateInvalid(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{})
	tests := []struct {
		name string
		in   session.NewSession
	}{
		{"EmptyUserID", session.NewSession{Username: "Alice"}},
		{"ShortUserID", session.NewSession{UserID: "short", Username: "Alice"}},
		{"BracesInUserID", session.NewSession{UserID: "{abcdefghi}", Username: "Alice"}},
		{"LongUserID", session.NewSession{UserID: "abcdefghijkl", Username: "Alice"}},
		{"EmptyUsername", session.NewSession{UserID: newUserID(t)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := e.store.Create(context.Background(), tc.in)
			if err == nil || errors.Is(err, session.ErrUnavailable) {
				t.Errorf("Create: got %v, want a programming error", err)
			}
		})
	}
}

// TestRedisHoldsNoToken goes through every kind of write and then reads
// everything back: no key or value may contain a token's secret (the user
// id and public id in a token name its keys), and every key but a user
// record must expire.
func TestRedisHoldsNoToken(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{IdleTimeout: time.Hour, MaxPerUser: 3})
	ctx := context.Background()
	if err := e.users.CreateUser(ctx, session.User{Username: "Alice", PasswordHash: "$argon2id$x"}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	u, err := e.users.UserByName(ctx, "alice")
	if err != nil {
		t.Fatalf("UserByName: %v", err)
	}
	var tokens []string
	for range 5 {
		tokens = append(tokens, create(t, e.store, u.ID).Token)
		e.clock.Advance(time.Second) // the cap revokes by creation time, in ms
	}
	refreshed, err := e.store.Refresh(ctx, tokens[4])
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	tokens = append(tokens, refreshed.Token)
	e.clock.Advance(45 * time.Minute)
	lookup(t, e.store, refreshed.Token) // touches
	if err := e.store.RevokeByID(ctx, refreshed.Token, lookup(t, e.store, tokens[3]).ID); err != nil {
		t.Fatalf("RevokeByID: %v", err)
	}

	var keys []string
	iter := e.rdb.Scan(ctx, 0, "*", 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN: %v", err)
	}
	if len(keys) < 3 {
		t.Fatalf("keys: got %v, want a user, an index and sessions", keys)
	}
	for _, k := range keys {
		var content []string
		switch typ := e.rdb.Type(ctx, k).Val(); typ {
		case "hash":
			for f, v := range e.rdb.HGetAll(ctx, k).Val() {
				content = append(content, f, v)
			}
		case "zset":
			content = e.rdb.ZRange(ctx, k, 0, -1).Val()
		case "string": // a session record, a receipt
			content = []string{e.rdb.Get(ctx, k).Val()}
		default:
			t.Errorf("key %q: unexpected type %q", k, typ)
		}
		for _, tok := range tokens {
			for _, c := range append(content, k) {
				if strings.Contains(c, tok[33:]) {
					t.Errorf("key %q holds a token's secret", k)
				}
			}
		}
		pttl := e.rdb.PTTL(ctx, k).Val()
		if strings.HasPrefix(k, "user:") {
			if pttl != -1 {
				t.Errorf("user key %q: PTTL %v, want none", k, pttl)
			}
		} else if pttl <= 0 {
			t.Errorf("key %q: PTTL %v, want > 0", k, pttl)
		}
	}
}

func sessionKey(token string) string {
	return "s:{" + token[:11] + "}:" + token[11:33]
}

func expireTimeMs(t testing.TB, e *env, token string) int64 {
	t.Helper()
	v, err := e.rdb.Do(context.Background(), "PEXPIRETIME", sessionKey(token)).Int64()
	if err != nil {
		t.Fatalf("PEXPIRETIME: %v", err)
	}
	return v
}

// ms truncates t to the milliseconds the store keeps.
func ms(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }

// TestLookupWhileRedisRefusesWrites: a session whose expiry is due to
// slide is still found while Redis refuses writes (out of memory under
// noeviction, as a full Redis does): the lookup is a read, and the touch
// that fails leaves the session to expire when it was going to. Once
// Redis takes writes again, a lookup slides it.
func TestLookupWhileRedisRefusesWrites(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{IdleTimeout: time.Hour})
	ctx := context.Background()
	iss := create(t, e.store, newUserID(t))
	e.clock.Advance(45 * time.Minute) // a quarter of the idle window left: touch due

	if err := e.rdb.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.rdb.ConfigSet(context.Background(), "maxmemory", "0") })
	if err := e.rdb.Set(ctx, "probe", "x", time.Minute).Err(); err == nil || !strings.Contains(err.Error(), "OOM") {
		t.Fatalf("a write with maxmemory 1: %v, want OOM", err)
	}
	got, err := e.store.Lookup(ctx, iss.Token)
	if err != nil {
		t.Fatalf("Lookup while Redis refuses writes: %v", err)
	}
	if !got.ExpiresAt.Equal(iss.Session.ExpiresAt) {
		t.Errorf("expiry while Redis refuses writes: %v, want %v (as created, not slid)", got.ExpiresAt, iss.Session.ExpiresAt)
	}

	if err := e.rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	got = lookup(t, e.store, iss.Token)
	if !got.ExpiresAt.After(iss.Session.ExpiresAt) {
		t.Errorf("expiry once Redis takes writes: %v, want it slid past %v", got.ExpiresAt, iss.Session.ExpiresAt)
	}
}

// TestRefreshKeepsRedisExpiryWithinAbsoluteEnd: a refresh near the
// absolute end gives the new key no Redis expiry past it, so that Redis's
// own expiry still ends the session.
func TestRefreshKeepsRedisExpiryWithinAbsoluteEnd(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{IdleTimeout: time.Hour, MaxLifetime: 90 * time.Minute})
	iss := create(t, e.store, newUserID(t))
	abs := iss.Session.AbsoluteExpiresAt
	e.clock.Advance(40 * time.Minute)
	lookup(t, e.store, iss.Token) // slides the idle expiry to the absolute end
	e.clock.Advance(40 * time.Minute)
	next, err := e.store.Refresh(context.Background(), iss.Token)
	if err != nil {
		t.Fatal(err)
	}
	if got := expireTimeMs(t, e, next.Token); got > abs.UnixMilli() {
		t.Errorf("PEXPIRETIME of the refreshed key: got %v, past the absolute end %v", got, abs.UnixMilli())
	}
}

// TestListSkipsSessionsPastLoweredLifetime: a session past a lowered
// maximum lifetime, which Lookup refuses, is not listed either: the list
// holds only live sessions.
func TestListSkipsSessionsPastLoweredLifetime(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{IdleTimeout: 24 * time.Hour, MaxLifetime: 24 * time.Hour})
	uid := newUserID(t)
	create(t, e.store, uid)
	e.clock.Advance(13 * time.Hour)
	lower := redisstore.NewSessions(e.rdb, redisstore.SessionOptions{IdleTimeout: 12 * time.Hour, MaxLifetime: 12 * time.Hour, Now: e.clock.Now})
	list, err := lower.List(context.Background(), uid)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Errorf("List past the lowered lifetime: got %d sessions, want none", len(list))
	}
}

// TestCapRevokesOldestCreatedEvenIfRefreshed: the cap revokes the session
// created first, also when it was refreshed since (a refresh keeps
// createdAt, so it stays the oldest).
func TestCapRevokesOldestCreatedEvenIfRefreshed(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{MaxPerUser: 2})
	ctx := context.Background()
	uid := newUserID(t)
	a := create(t, e.store, uid)
	e.clock.Advance(time.Minute)
	b := create(t, e.store, uid)
	e.clock.Advance(time.Minute)
	a2, err := e.store.Refresh(ctx, a.Token)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	c := create(t, e.store, uid)
	if _, err := e.store.Lookup(ctx, a2.Token); err == nil {
		t.Errorf("the first-created session (refreshed) survived the cap")
	}
	for name, tok := range map[string]string{"second": b.Token, "newest": c.Token} {
		if _, err := e.store.Lookup(ctx, tok); err != nil {
			t.Errorf("the %s session: %v, want live", name, err)
		}
	}
}

// TestLookupOfSessionRevokedBeforeItsTouch: a lookup whose read found the
// session live but whose touch finds it gone (revoked between the two)
// does not serve it: the revocation wins.
func TestLookupOfSessionRevokedBeforeItsTouch(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{IdleTimeout: time.Hour})
	iss := create(t, e.store, newUserID(t))
	e.clock.Advance(40 * time.Minute) // less than half the idle window left: a touch is due
	other := redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{e.srv.Addr()}, Timeout: time.Second})
	t.Cleanup(func() { _ = other.Close() })
	e.rdb.AddHook(revokeBeforeScript{other: other, key: sessionKey(iss.Token)})
	if s, err := e.store.Lookup(context.Background(), iss.Token); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Lookup of a session revoked before its touch: got %+v, %v; want ErrNotFound", s, err)
	}
}

// revokeBeforeScript deletes key, through another client, before any
// script runs: a revocation that lands between a lookup's read and its
// touch.
type revokeBeforeScript struct {
	other redis.UniversalClient
	key   string
}

func (revokeBeforeScript) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h revokeBeforeScript) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			if err := h.other.Del(ctx, h.key).Err(); err != nil {
				return err
			}
		}
		return next(ctx, cmd)
	}
}

func (revokeBeforeScript) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// otherByte is a token character other than c.
func otherByte(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// TestKnownIDWrongSecret plays an attacker who knows a session's id (every
// listing shows them) and the user id: a token of that session with
// another secret must be refused by every operation, and change nothing.
func TestKnownIDWrongSecret(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{IdleTimeout: time.Hour})
	ctx := context.Background()
	uid := newUserID(t)
	victim := create(t, e.store, uid)
	other := create(t, e.store, uid)
	forged := victim.Token[:33] + strings.Repeat("A", 43)
	before := readKey(t, e, victim.Token)
	// Less than half the idle window left: a lookup would touch.
	e.clock.Advance(40 * time.Minute)

	_, err := e.store.Lookup(ctx, forged)
	wantNotFound(t, "Lookup", err)
	_, err = e.store.Refresh(ctx, forged)
	wantNotFound(t, "Refresh", err)
	wantNotFound(t, "Revoke", e.store.Revoke(ctx, forged))
	_, err = e.store.RevokeAll(ctx, forged)
	wantNotFound(t, "RevokeAll", err)
	if err := e.store.RevokeByID(ctx, forged, other.Session.ID); !errors.Is(err, session.ErrCallerGone) {
		t.Errorf("RevokeByID: got %v, want %v", err, session.ErrCallerGone)
	}
	if got := readKey(t, e, victim.Token); got != before {
		t.Errorf("victim's record changed:\ngot  %x\nwant %x", got, before)
	}
	list, err := e.store.List(ctx, uid)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list) != 2 {
		t.Errorf("sessions after the forged calls: got %d, want 2", len(list))
	}
	lookup(t, e.store, victim.Token)
	lookup(t, e.store, other.Token)
}

func readKey(t *testing.T, e *env, token string) string {
	t.Helper()
	v, err := e.rdb.Get(context.Background(), sessionKey(token)).Result()
	if err != nil {
		t.Fatalf("GET %s: %v", sessionKey(token), err)
	}
	return v
}

// TestLookupOfSessionRefreshedBeforeItsTouch: a lookup whose read found
// the session under the old secret but whose touch runs after a refresh
// gave it a new one does not serve it, nor touch the refreshed session: the
// old token is gone.
func TestLookupOfSessionRefreshedBeforeItsTouch(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{IdleTimeout: time.Hour})
	iss := create(t, e.store, newUserID(t))
	e.clock.Advance(40 * time.Minute) // less than half the idle window left: a touch is due
	other := redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{e.srv.Addr()}, Timeout: time.Second})
	t.Cleanup(func() { _ = other.Close() })
	// The refresher's clock is behind, so its expiry is earlier than the
	// one the stale touch would write.
	behind := func() time.Time { return e.clock.Now().Add(-10 * time.Minute) }
	refresher := redisstore.NewSessions(other, redisstore.SessionOptions{IdleTimeout: time.Hour, Now: behind})
	var next session.Issued
	e.rdb.AddHook(&refreshBeforeScript{refresh: func(ctx context.Context) error {
		var err error
		next, err = refresher.Refresh(ctx, iss.Token)
		return err
	}})
	if s, err := e.store.Lookup(context.Background(), iss.Token); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Lookup of a session refreshed before its touch: got %+v, %v; want ErrNotFound", s, err)
	}
	if next.Token == "" {
		t.Fatal("the refresh did not run")
	}
	// The refresh set seen and the expiry; the stale touch changed neither.
	got, err := refresher.Lookup(context.Background(), next.Token)
	if err != nil {
		t.Fatalf("Lookup of the new token: %v", err)
	}
	if !got.LastSeenAt.Equal(next.Session.LastSeenAt) || !got.ExpiresAt.Equal(next.Session.ExpiresAt) {
		t.Errorf("refreshed session: got seen %v, expires %v; want %v, %v", got.LastSeenAt, got.ExpiresAt, next.Session.LastSeenAt, next.Session.ExpiresAt)
	}
}

// refreshBeforeScript runs refresh, once, before the first script of the
// client it hooks.
type refreshBeforeScript struct {
	refresh func(context.Context) error
	done    bool
}

func (*refreshBeforeScript) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *refreshBeforeScript) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); !h.done && (name == "evalsha" || name == "eval") {
			h.done = true
			if err := h.refresh(ctx); err != nil {
				return err
			}
		}
		return next(ctx, cmd)
	}
}

func (*refreshBeforeScript) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
