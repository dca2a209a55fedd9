package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/session"
)

// These helpers write Redis directly, in the store's key layout, to build in
// a moment what a hoarding account would take hours of logins to build: an
// index full of members of gone sessions, or over the cap (made under a
// higher one). Only tests of what such an index costs use them.

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
		zs[i] = redis.Z{Score: float64(newest.UnixMilli() - int64(i)), Member: randomID()}
	}
	return zs
}

// addToIndex adds members to the session index of uid.
func addToIndex(t testing.TB, rdb redis.UniversalClient, uid string, zs []redis.Z) {
	t.Helper()
	if err := rdb.ZAdd(context.Background(), "i:{"+uid+"}", zs...).Err(); err != nil {
		t.Fatalf("ZADD: %v", err)
	}
}

// seedLiveSessions stores n live sessions of uid in the store's layout (a
// record and an index member each; see README, "Data in Redis"), created
// one millisecond apart before now, and returns nothing: nobody holds
// their tokens (their verifiers are of no secret), which is what the
// sessions of a hoarding script look like.
func seedLiveSessions(t testing.TB, rdb redis.UniversalClient, uid, username string, n int) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	pipe := rdb.Pipeline()
	const ua = "hoarder/1.0"
	uaRef := sha256.Sum256([]byte(ua))
	for i := range n {
		id := randomID()
		ct := now.Add(-time.Minute).UnixMilli() - int64(n-i)
		exp := now.Add(time.Hour).UnixMilli()
		abs := ct + 24*time.Hour.Milliseconds()
		key := "s:{" + uid + "}:" + id
		pipe.Set(ctx, key, packRecord(ct, exp, abs, uaRef[:8], username, "127.0.0.1"), 0)
		pipe.PExpireAt(ctx, key, time.UnixMilli(exp))
		pipe.ZAdd(ctx, "i:{"+uid+"}", redis.Z{Score: float64(ct), Member: id})
		pipe.HSet(ctx, "ua:{"+uid+"}", string(uaRef[:8]), ua)
		pipe.PExpireAt(ctx, "ua:{"+uid+"}", time.UnixMilli(abs))
		pipe.PExpireAt(ctx, "i:{"+uid+"}", time.UnixMilli(abs))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("seeding sessions: %v", err)
	}
}

// packRecord is a session record (README, "Data in Redis": format 1, a
// verifier, four 6-byte times, the UA reference, the username's length,
// the username, the IP) with a random verifier.
func packRecord(ct, exp, abs int64, uaRef []byte, username, ip string) string {
	b := make([]byte, 0, 50+len(username)+len(ip))
	b = append(b, 1)
	var verifier [16]byte
	_, _ = rand.Read(verifier[:])
	b = append(b, verifier[:]...)
	for _, ms := range []int64{ct, ct, exp, abs} {
		b = append(b, byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms))
	}
	b = append(b, uaRef...)
	b = append(b, byte(len(username)))
	b = append(b, username...)
	return string(append(b, ip...))
}

// randomID is a public id of the shape the store makes.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
