package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"redis-session-app/services/api/internal/redisstore"
	"redis-session-app/services/api/internal/redistest"
	"redis-session-app/services/api/internal/session"
)

// FuzzLookupToken feeds arbitrary strings to Lookup against a real Redis
// holding one session: it must never panic, and must answer ErrNotFound
// for everything but that session's token.
func FuzzLookupToken(f *testing.F) {
	srv := redistest.Start(f)
	rdb := redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr()}, Timeout: 2 * time.Second})
	f.Cleanup(func() { _ = rdb.Close() })
	store := redisstore.NewSessions(rdb, redisstore.SessionOptions{})
	iss := create(f, store, newUserID(f))

	for _, seed := range []string{
		iss.Token,
		iss.Token[:11] + strings.Repeat("A", 65),
		iss.Token[:33] + strings.Repeat("A", 43),
		iss.Token[:11] + iss.Token[33:],
		iss.Token[:75],
		iss.Token + "x",
		"",
		"a",
		strings.Repeat("A", 21),
		strings.Repeat("A", 22),
		strings.Repeat("A", 128),
		strings.Repeat("A", 129),
		"{abcdefghi}" + strings.Repeat("A", 65),
		"s:{x}:" + strings.Repeat("A", 70),
		strings.Repeat("é", 30),
		"\x00\xff" + strings.Repeat("A", 30),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		sess, err := store.Lookup(context.Background(), token)
		if token == iss.Token {
			if err != nil || sess.ID != iss.Session.ID {
				t.Fatalf("Lookup of the real token: got %+v, %v, want session %v", sess, err, iss.Session.ID)
			}
			return
		}
		if !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Lookup(%q): got %+v, %v, want %v", token, sess, err, session.ErrNotFound)
		}
	})
}

func BenchmarkLookup(b *testing.B) {
	srv := redistest.Start(b)
	rdb := redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr()}})
	b.Cleanup(func() { _ = rdb.Close() })
	store := redisstore.NewSessions(rdb, redisstore.SessionOptions{})
	iss := create(b, store, newUserID(b))
	ctx := context.Background()

	b.Run("Serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := store.Lookup(ctx, iss.Token); err != nil {
				b.Fatalf("Lookup: %v", err)
			}
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := store.Lookup(ctx, iss.Token); err != nil {
					b.Errorf("Lookup: %v", err)
					return
				}
			}
		})
	})
}
