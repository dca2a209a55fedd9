package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"redis-session-app/loadtest/internal/poll"
)

// TestNginxAccessLogIsJSON runs the repository's nginx.conf in front of a
// fake replica and sends requests whose User-Agent and raw path hold bytes
// that are not UTF-8: every access log line must still be valid UTF-8 and
// valid JSON (nginx's escape=json passes bytes from 0x80 up as they came),
// and values that are valid UTF-8 must be logged as they are.
func TestNginxAccessLogIsJSON(t *testing.T) {
	replicas := startFakeReplicas(t, 1)
	addr, dir := startProdNginx(t, replicas.addrs)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	tests := []struct {
		name, path, userAgent string
		// What the line's path and user_agent must say.
		wantPath, wantUserAgent string
	}{
		{"ASCII", "/profile", "curl/8.0", "/profile", "curl/8.0"},
		{"UTF8UserAgent", "/profile", "Mozilla/5.0 (Gerät; Größe) ☃", "/profile", "Mozilla/5.0 (Gerät; Größe) ☃"},
		{"InvalidUserAgent", "/profile", "evil\xff", "/profile", "<not UTF-8>"},
		{"TruncatedUserAgent", "/profile", "cut \xe2\x98", "/profile", "<not UTF-8>"},
		{"Surrogate", "/profile", "\xed\xa0\x80", "/profile", "<not UTF-8>"},
		{"InvalidPath", "/profile\x80x", "curl/8.0", "<not UTF-8>", "curl/8.0"},
		{"UTF8Path", "/prof\xc3\xbcle", "curl/8.0", "/prof\xc3\xbcle", "curl/8.0"},
		{"EmptyUserAgent", "/profile", "", "/profile", ""},
		{"NoUserAgent", "/profile", noUserAgent, "/profile", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := "log-" + tc.name
			ua := "User-Agent: " + tc.userAgent + "\r\n"
			if tc.userAgent == noUserAgent {
				ua = ""
			}
			sendRaw(t, addr, fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\n%sX-Request-Id: %s\r\nConnection: close\r\n\r\n", tc.path, addr, ua, id))
			var line []byte
			err := poll.Until(ctx, 5*time.Second, 10*time.Millisecond, func() error {
				if line = logLine(t, filepath.Join(dir, "nginx.log"), id); line == nil {
					return fmt.Errorf("no access log line for request %s", id)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !utf8.Valid(line) || !json.Valid(line) {
				t.Fatalf("access log line is not valid UTF-8 JSON: %q", line)
			}
			var got struct {
				Path      string `json:"path"`
				UserAgent string `json:"user_agent"`
			}
			if err := json.Unmarshal(line, &got); err != nil {
				t.Fatal(err)
			}
			if got.Path != tc.wantPath || got.UserAgent != tc.wantUserAgent {
				t.Errorf("logged path %q, user_agent %q; want %q, %q", got.Path, got.UserAgent, tc.wantPath, tc.wantUserAgent)
			}
		})
	}
}

// startProdNginx runs the repository's nginx.conf on the host in front of
// the upstreams at addrs (startFakeReplicas' or a test's own), as make
// bench does, and returns its address and its work directory, which holds
// its logs (nginx.log is its stdout: the access log). It stops when the
// test ends; a failed test gets the logs.
func startProdNginx(t *testing.T, addrs []string) (addr, dir string) {
	t.Helper()
	requireNginx(t)
	conf, err := os.ReadFile("../../nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	b := &bench{dir: dir, ps: &procs{dir: dir}}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	prod, err := proxyConfig(string(conf), addrs, port, filepath.Join(dir, "nginx.pid"), freePort)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t.Cleanup(func() {
		b.ps.stopAll()
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
			for _, l := range logs {
				out, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", filepath.Base(l), out)
			}
		}
	})
	if _, err := b.startNginx(ctx, "nginx", prod, port); err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(port), dir
}

// noUserAgent, as a test's User-Agent, sends none.
const noUserAgent = "\x00none"

// sendRaw writes req as it is (a Go client would escape the path) and
// reads the answer.
func sendRaw(t *testing.T, addr, req string) {
	t.Helper()
	sendRawStatus(t, addr, req, 10*time.Second)
}

// sendRawStatus writes req as it is and returns the answer's status,
// waiting for it at most wait.
func sendRawStatus(t *testing.T, addr, req string, wait time.Duration) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(wait))
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// logLine returns the line of the access log (in nginx's log file, its
// stdout) that carries request id id, or nil.
func logLine(t *testing.T, path, id string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for line := range bytes.Lines(data) {
		if bytes.Contains(line, []byte(`"request_id":"`+id+`"`)) {
			return bytes.TrimSpace(line)
		}
	}
	return nil
}

// TestNginxDoesNotResendAHungLogin: a login whose replica took it and then
// hangs is answered 504 after the login location's 10 s read timeout, not
// sent to another replica (which would double the wait, while the hung
// replica may still run it). nginx.conf allows a resend only within 6 s
// of the first try; TestNginxResendsOnlyAPreReadLogin checks that a login
// whose replica died is resent.
func TestNginxDoesNotResendAHungLogin(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		seen int
	)
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		addrs = append(addrs, ln.Addr().String())
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				t.Cleanup(func() { conn.Close() })
				go func() {
					br := bufio.NewReader(conn)
					for {
						req, err := http.ReadRequest(br)
						if err != nil {
							return
						}
						if req.URL.Path == "/auth/login" {
							mu.Lock()
							seen++
							mu.Unlock()
							return // and hang: the connection stays open, unanswered
						}
						// Anything else (startNginx's /healthz) is answered.
						if _, err := fmt.Fprint(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"); err != nil {
							return
						}
					}
				}()
			}
		}()
	}
	addr, _ := startProdNginx(t, addrs)
	body := `{"username":"alice","password":"correct horse"}`
	start := time.Now()
	status := sendRawStatus(t, addr, fmt.Sprintf(
		"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body), 30*time.Second)
	took := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	if status != http.StatusGatewayTimeout || seen != 1 {
		t.Errorf("login to a hung replica: %d after %v, replicas saw it %d time(s); want 504 and once", status, took.Round(time.Millisecond), seen)
	}
}
