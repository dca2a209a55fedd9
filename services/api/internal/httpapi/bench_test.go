package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"redis-session-app/services/api/internal/batchwriter"
	"redis-session-app/services/api/internal/httpapi"
	"redis-session-app/services/api/internal/ratelimit"
	"redis-session-app/services/api/internal/redisstore"
	"redis-session-app/services/api/internal/redistest"
	"redis-session-app/services/api/internal/session"
)

// BenchmarkProfileRedis measures GET /profile through the whole router on
// the real session store and a real redis-server, with the access log at
// info level written to a file, as a replica under `make bench` does: what the
// service costs per request short of net/http. Besides ns/op it reports
// cpu-µs/op, the CPU time of this process (router, go-redis, GC; not
// redis-server) per request, the figure comparable to the replica CPU per
// request of `make bench`. The log is written straight to the file
// ("direct", one write per line) or through the batchwriter that run uses.
//
//	go test -run '^$' -bench ProfileRedis -benchmem -cpuprofile cpu.out ./internal/httpapi/
func BenchmarkProfileRedis(b *testing.B) {
	for _, tc := range []struct {
		name string
		log  func(b *testing.B, f *os.File) io.Writer
	}{
		{"Log=direct", func(_ *testing.B, f *os.File) io.Writer { return f }},
		{"Log=batched", func(b *testing.B, f *os.File) io.Writer {
			w := batchwriter.New(f, batchwriter.Options{})
			b.Cleanup(func() { _ = w.Close() })
			return w
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "api.log"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = f.Close() })
			out := tc.log(b, f)
			h, _ := newRedisHarness(b, func(d *httpapi.Deps) {
				d.Logger = slog.New(slog.NewJSONHandler(out, nil)).With("instance", "bench")
			})
			tok := benchLogin(b, h)
			// Concurrent requests, as a replica behind nginx serves
			// them, so that the Redis round trips overlap.
			b.SetParallelism(8)
			b.ReportAllocs()
			start := cpuTime(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest(http.MethodGet, "/profile", nil)
				req.RemoteAddr = "192.0.2.10:1"
				req.Header.Set("X-Session-Id", tok)
				req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")
				for pb.Next() {
					rec := httptest.NewRecorder()
					h.router.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Errorf("status: got %v, want 200", rec.Code)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(cpuTime(b)-start)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
		})
	}
}

func benchLogin(b *testing.B, h *harness) string {
	b.Helper()
	creds := `{"username":"Alice","password":"correct horse"}`
	if rec := h.do(newRequest(http.MethodPost, "/auth/register", creds)); rec.Code != http.StatusCreated {
		b.Fatalf("register: got %v %s, want 201", rec.Code, rec.Body)
	}
	rec := h.do(newRequest(http.MethodPost, "/auth/login", creds))
	if rec.Code != http.StatusOK {
		b.Fatalf("login: got %v %s, want 200", rec.Code, rec.Body)
	}
	var body struct {
		SessionID string `json:"sessionId"`
	}
	decodeBody(b, rec, &body)
	return body.SessionID
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkListSessions measures GET /auth/sessions of a user at the
// default cap (100 sessions) through the whole router on the real session
// store, rate limiter and a real redis-server, the access log at info:
// what one listing costs a replica, the figure behind the victim's p99 in
// BenchmarkProfileUnderSessionFlood. cpu-µs/op is this process's CPU per
// listing (not redis-server's).
//
//	go test -run '^$' -bench ListSessions -benchmem -cpuprofile cpu.out ./internal/httpapi/
func BenchmarkListSessions(b *testing.B) {
	srv := redistest.Start(b)
	client := redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr()}})
	b.Cleanup(func() { _ = client.Close() })
	store := redisstore.NewSessions(client, redisstore.SessionOptions{})
	users := redisstore.NewUsers(client)
	h := newHarness(b, func(d *httpapi.Deps) {
		d.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil)).With("instance", "bench")
		d.Sessions = store
		d.Users = users
		d.Limiter = ratelimit.New(client, ratelimit.Limits{
			LoginPerUser:    session.Limit{Rate: 100, Period: time.Minute},
			LoginPerIP:      session.Limit{Rate: 100, Period: time.Minute},
			SessionsPerUser: session.Limit{Rate: 1_000_000, Period: time.Second},
		})
		d.Now = time.Now
	})
	ctx := context.Background()
	if err := users.CreateUser(ctx, session.User{Username: "alice", PasswordHash: "unused"}); err != nil {
		b.Fatal(err)
	}
	u, err := users.UserByName(ctx, "alice")
	if err != nil {
		b.Fatal(err)
	}
	var tok string
	for range 100 {
		iss, _, err := store.Create(ctx, session.NewSession{UserID: u.ID, Username: u.Username,
			UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
			IP:        "203.0.113.7"})
		if err != nil {
			b.Fatal(err)
		}
		tok = iss.Token
	}
	req := httptest.NewRequest(http.MethodGet, "/auth/sessions", nil)
	req.RemoteAddr = "192.0.2.10:1"
	req.Header.Set("X-Session-Id", tok)
	b.ReportAllocs()
	start := cpuTime(b)
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.router.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"current":true`)) {
			b.Fatalf("GET /auth/sessions: got %v %.200s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(cpuTime(b)-start)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
}
