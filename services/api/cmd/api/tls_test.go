package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"redis-session-app/services/api/internal/logbuf"
	"redis-session-app/services/api/internal/poll"
	"redis-session-app/services/api/internal/redistest"
)

// TestRedisTLS runs the real process with REDIS_TLS=true against a Redis
// that speaks TLS with a certificate of a private authority. Trusting that
// authority (through SSL_CERT_FILE, as an operator would) makes the
// replica ready and serving; without it, the certificate must be refused.
func TestRedisTLS(t *testing.T) {
	t.Parallel()
	rds := redistest.StartTLS(t)
	tlsEnv := baseEnv(rds.TLSAddr(), "tls").with("REDIS_TLS", "true")

	t.Run("TrustedAuthority", func(t *testing.T) {
		t.Parallel()
		base := startProcess(t, tlsEnv.with("SSL_CERT_FILE", rds.CAFile()))
		poll.For(t, 10*time.Second, "/readyz to answer 200 over TLS", func() bool {
			res, err := http.Get(base + "/readyz")
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.StatusCode == http.StatusOK
		})
		post := func(path string) *http.Response {
			t.Helper()
			res, err := http.Post(base+path, "application/json", strings.NewReader(credentials("tlsuser", pw)))
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		if res := post("/auth/register"); res.StatusCode != http.StatusCreated {
			t.Fatalf("register over TLS: got %d, want 201", res.StatusCode)
		}
		res := post("/auth/login")
		defer res.Body.Close()
		var login struct{ SessionID string }
		if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&login) != nil {
			t.Fatalf("login over TLS: got %d, want 200 with a sessionId", res.StatusCode)
		}
		// The session is in the Redis behind the TLS port.
		n, err := rds.Client(t).DBSize(t.Context()).Result()
		if err != nil || n < 2 {
			t.Errorf("keys in Redis: got %d, %v, want the user and the session", n, err)
		}
	})

	t.Run("UnknownAuthorityRefused", func(t *testing.T) {
		t.Parallel()
		// An empty file: the process trusts no authority at all.
		base := startProcess(t, tlsEnv.with("SSL_CERT_FILE", "/dev/null"))
		for range 3 {
			res, err := http.Get(base + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("/readyz with an untrusted certificate: got %d, want 503", res.StatusCode)
			}
		}
	})
}

// startProcess runs main in a child process with e and returns its base URL
// once it listens. The child is killed when the test ends.
func startProcess(t *testing.T, e env) string {
	t.Helper()
	cmd := mainProcess(t, e)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(stdout)
	var logs logbuf.Buffer
	addr := ""
	for addr == "" && sc.Scan() {
		logs.Write(append(sc.Bytes(), '\n'))
		addr = listenAddr(&logs)
	}
	if addr == "" {
		t.Fatalf("child exited without listening: %v\n%s", sc.Err(), logs.String())
	}
	go func() {
		for sc.Scan() {
		}
	}()
	return "http://" + addr
}
