package redisstore_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"redis-session-app/services/api/internal/redisstore"
	"redis-session-app/services/api/internal/redistest"
	"redis-session-app/services/api/internal/session"
)

// Realistic sizes of what a login stores: a browser's User-Agent, an IPv4
// address, and an argon2id hash as the password package encodes it.
const (
	benchUserAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	benchIP        = "203.0.113.7"
	benchHash      = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
)

// BenchmarkMemory measures what Redis holds per user and per session, for
// capacity planning (README, "Scaling out"): b.N records are written to a
// fresh redis-server and the growth of its used_memory is divided by b.N.
// Run it with a fixed count, e.g.
//
//	go test -run '^$' -bench Memory -benchtime 20000x ./internal/redisstore/
func BenchmarkMemory(b *testing.B) {
	b.Run("User", func(b *testing.B) {
		srv, users, _ := memoryStore(b)
		before := usedMemory(b, srv)
		for i := range b.N {
			benchUser(b, users, i)
		}
		b.ReportMetric(float64(usedMemory(b, srv)-before)/float64(b.N), "B/user")
	})
	for _, perUser := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("Session/%dPerUser", perUser), func(b *testing.B) {
			srv, users, sessions := memoryStore(b)
			var ids []session.User
			for i := range (b.N + perUser - 1) / perUser {
				ids = append(ids, benchUser(b, users, i))
			}
			before := usedMemory(b, srv)
			for i := range b.N {
				u := ids[i/perUser]
				if _, _, err := sessions.Create(context.Background(), session.NewSession{
					UserID: u.ID, Username: u.Username, UserAgent: benchUserAgent, IP: benchIP,
				}); err != nil {
					b.Fatalf("Create: %v", err)
				}
			}
			b.ReportMetric(float64(usedMemory(b, srv)-before)/float64(b.N), "B/session")
		})
	}
}

// TestUATableStaysCompact checks that a user's UA table holding the
// longest User-Agent a session keeps stays in Redis's listpack encoding
// under the hash-max-listpack-value every deployment sets (512, as
// redistest does), and that a session key is a plain string of the
// record's size: its 50-byte header, the username and the IP.
func TestUATableStaysCompact(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{})
	ctx := context.Background()
	u := register(t, e.users, "alice")
	ua := strings.Repeat("M", session.MaxClientTextLen+100) // cut to the bound
	iss, _, err := e.store.Create(ctx, session.NewSession{UserID: u.ID, Username: u.Username, UserAgent: ua, IP: benchIP})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if got := len(iss.Session.UserAgent); got != session.MaxClientTextLen {
		t.Fatalf("stored User-Agent: got %d bytes, want %d", got, session.MaxClientTextLen)
	}
	got, err := e.rdb.ObjectEncoding(ctx, "ua:{"+u.ID+"}").Result()
	if err != nil {
		t.Fatalf("OBJECT ENCODING: %v", err)
	}
	if got != "listpack" {
		t.Errorf("UA table encoding: got %q, want %q", got, "listpack")
	}
	key := sessionKey(iss.Token)
	if got := e.rdb.Type(ctx, key).Val(); got != "string" {
		t.Errorf("session key type: got %q, want %q", got, "string")
	}
	if got, want := e.rdb.StrLen(ctx, key).Val(), int64(50+len(u.Username)+len(benchIP)); got != want {
		t.Errorf("session record: got %d bytes, want %d", got, want)
	}
}

func memoryStore(b *testing.B) (*redistest.Server, *redisstore.Users, *redisstore.Sessions) {
	b.Helper()
	srv := redistest.Start(b)
	rdb := redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr()}})
	b.Cleanup(func() { _ = rdb.Close() })
	return srv, redisstore.NewUsers(rdb), redisstore.NewSessions(rdb, redisstore.SessionOptions{MaxPerUser: 1000})
}

func benchUser(b *testing.B, users *redisstore.Users, i int) session.User {
	b.Helper()
	name := fmt.Sprintf("user-%08d", i)
	ctx := context.Background()
	if err := users.CreateUser(ctx, session.User{Username: name, PasswordHash: benchHash}); err != nil {
		b.Fatalf("CreateUser: %v", err)
	}
	u, err := users.UserByName(ctx, name)
	if err != nil {
		b.Fatalf("UserByName: %v", err)
	}
	return u
}

// usedMemory is INFO memory's used_memory: what Redis has allocated, keys,
// values, expiry entries and its own overhead.
func usedMemory(b *testing.B, srv *redistest.Server) int64 {
	b.Helper()
	v, err := srv.Do(b, "INFO", "memory")
	if err != nil {
		b.Fatalf("INFO memory: %v", err)
	}
	text, _ := v.(string)
	for line := range strings.SplitSeq(text, "\r\n") {
		if n, ok := strings.CutPrefix(line, "used_memory:"); ok {
			used, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				b.Fatalf("used_memory %q: %v", n, err)
			}
			return used
		}
	}
	b.Fatalf("no used_memory in INFO memory")
	return 0
}
