package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/session"
)

// These helpers write Redis directly, in the store's key layout, to build in
// a moment what a hoarding account would take hours of logins to build: an
// index the previous version (no cap, no bound on the work of a call) could
// leave behind. Only tests of what such an index costs use them.

// userIDOf reads the id of a registered user.
func userIDOf(t testing.TB, rdb redis.UniversalClient, username string) string {
	t.Helper()
	id, err := rdb.HGet(context.Background(), "user:"+session.CanonicalUsername(username), "id").Result()
	if err != nil {
		t.Fatalf("reading the id of %s: %v", username, err)
	}
	return id
}

// staleMembers returns n index members whose sessions do not exist, scored
// from oldest back in time, one millisecond apart.
func staleMembers(n int, newest time.Time) []redis.Z {
	zs := make([]redis.Z, n)
	for i := range zs {
		zs[i] = redis.Z{Score: float64(newest.UnixMilli() - int64(i)), Member: randomHex()}
	}
	return zs
}

// addToIndex adds members to the session index of uid.
func addToIndex(t testing.TB, rdb redis.UniversalClient, uid string, zs []redis.Z) {
	t.Helper()
	if err := rdb.ZAdd(context.Background(), "idx:{"+uid+"}", zs...).Err(); err != nil {
		t.Fatalf("ZADD: %v", err)
	}
}

// seedLiveSessions stores n live sessions of uid the way the previous
// version did (a hash and an index member each, no id map), created one
// millisecond apart before now, and returns nothing: nobody holds their
// tokens, which is what the sessions of a hoarding script look like.
func seedLiveSessions(t testing.TB, rdb redis.UniversalClient, uid, username string, n int) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	pipe := rdb.Pipeline()
	for i := range n {
		member := randomHex()
		ct := now.Add(-time.Minute).UnixMilli() - int64(n-i)
		exp := now.Add(time.Hour).UnixMilli()
		key := "sess:{" + uid + "}:" + member
		pipe.HSet(ctx, key,
			"uid", uid, "user", username, "id", randomHex()[:22],
			"ct", strconv.FormatInt(ct, 10), "seen", strconv.FormatInt(ct, 10),
			"exp", strconv.FormatInt(exp, 10), "abs", strconv.FormatInt(ct+24*time.Hour.Milliseconds(), 10),
			"ua", "hoarder/1.0", "ip", "127.0.0.1")
		pipe.PExpireAt(ctx, key, time.UnixMilli(exp))
		pipe.ZAdd(ctx, "idx:{"+uid+"}", redis.Z{Score: float64(ct), Member: member})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("seeding sessions: %v", err)
	}
}

func randomHex() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
