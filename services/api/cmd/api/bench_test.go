package main

import (
	"net/http"
	"testing"

	"redis-session-app/services/api/internal/redistest"
)

// BenchmarkProfile measures GET /profile with a valid session and no touch
// due, over real HTTP on loopback against a real Redis: the hot path.
func BenchmarkProfile(b *testing.B) {
	rds := redistest.Start(b)
	r := startReplica(b, baseEnv(rds.Addr(), "bench").with("LOG_LEVEL", "info"))
	r.register(b, "bencher", pw)
	tok := r.login(b, "bencher", pw)

	b.ReportAllocs()
	for b.Loop() {
		res, err := r.try(http.MethodGet, "/profile", "", []string{"X-Session-Id", tok})
		if err != nil || res.status != http.StatusOK {
			b.Fatalf("GET /profile: status %d, err %v", res.status, err)
		}
	}
}

// BenchmarkLogin measures POST /auth/login with the production argon2id
// parameters: the cost is almost all in the hash.
func BenchmarkLogin(b *testing.B) {
	rds := redistest.Start(b)
	r := startReplica(b, baseEnv(rds.Addr(), "bench").with(
		"LOG_LEVEL", "info", "LOGIN_LIMIT_PER_USER", "1000000/s", "LOGIN_LIMIT_PER_IP", "1000000/s"))
	r.register(b, "bencher", pw)
	body := credentials("bencher", pw)

	b.ReportAllocs()
	for b.Loop() {
		res, err := r.try(http.MethodPost, "/auth/login", body, nil)
		if err != nil || res.status != http.StatusOK {
			b.Fatalf("POST /auth/login: status %d, err %v", res.status, err)
		}
	}
}
