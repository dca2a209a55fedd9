package main

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"redis-session-app/services/api/internal/redistest"
)

// TestBodyRefusedUnreadIsAnsweredAtOnce: a body refused before it is read
// (declared too large, or not JSON) is answered at once and the connection
// closed, even when the client never sends it: net/http would otherwise
// wait to read up to 256 KiB of it, until the 10 s read timeout.
func TestBodyRefusedUnreadIsAnsweredAtOnce(t *testing.T) {
	t.Parallel()
	r := startReplica(t, baseEnv(redistest.Start(t).Addr(), "unread"))
	for _, tc := range []struct {
		name, contentType string
		length            int
		want              int
	}{
		{"TooLarge", "application/json", 100_000, http.StatusRequestEntityTooLarge},
		{"NotJSON", "text/plain", 1000, http.StatusUnsupportedMediaType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Declared, never sent.
			resp := rawRequest(t, r.addr, "POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: "+tc.contentType+
				"\r\nContent-Length: "+strconv.Itoa(tc.length)+"\r\n\r\n")
			if resp.StatusCode != tc.want || !resp.Close {
				t.Errorf("got %d, closing %v; want %d, closing", resp.StatusCode, resp.Close, tc.want)
			}
		})
	}
}

// TestChunkedBodyOverTheLimitIsAnsweredAtOnce: a chunked body that goes
// over the limit is answered 413 as soon as it does, and the connection
// closed, though the body has not ended: net/http would otherwise read on
// through the rest of it before answering, until the read timeout when
// it stalls.
func TestChunkedBodyOverTheLimitIsAnsweredAtOnce(t *testing.T) {
	t.Parallel()
	r := startReplica(t, baseEnv(redistest.Start(t).Addr(), "chunked"))
	r.register(t, "chunked-body", "password-1")
	token := r.login(t, "chunked-body", "password-1")
	for _, path := range []string{"/auth/login", "/auth/logout"} {
		t.Run(strings.ReplaceAll(path, "/", "_"), func(t *testing.T) {
			// One byte over the limit, and then nothing: no last chunk.
			resp := rawRequest(t, r.addr, "POST "+path+" HTTP/1.1\r\nHost: localhost\r\nX-Session-Id: "+token+
				"\r\nTransfer-Encoding: chunked\r\n\r\n"+chunk(strings.Repeat("a", 65_537)))
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
				t.Errorf("got %d, closing %v; want 413, closing", resp.StatusCode, resp.Close)
			}
		})
	}
	if res := r.profile(t, token); res.status != http.StatusOK {
		t.Errorf("the session answered %d after its refused logout", res.status)
	}
}

// TestIgnoredBodyIsReadBeforeAnythingIsDone: a route that takes no body
// reads one that was sent before it acts, so a body that is too large or
// breaks off refuses the whole request and the session is as it was.
// Before, logout, refresh and the revocations acted first and the body
// was read after: nginx (or the replica) then answered 413 or 400 to a
// client whose session was already gone.
func TestIgnoredBodyIsReadBeforeAnythingIsDone(t *testing.T) {
	t.Parallel()
	r := startReplica(t, baseEnv(redistest.Start(t).Addr(), "ignoredbody"))
	r.register(t, "ignored-body", "password-1")
	big := strings.Repeat("a", 40_000)
	bodies := []struct {
		name string
		// header ends the request's header lines; body follows it.
		header, body string
		want         int
	}{
		{"ChunkedTooLarge", "Transfer-Encoding: chunked\r\n", chunk(big) + chunk(big) + "0\r\n\r\n", http.StatusRequestEntityTooLarge},
		{"DeclaredTooLarge", "Content-Length: 70000\r\n", strings.Repeat("a", 70_000), http.StatusRequestEntityTooLarge},
		{"MalformedChunk", "Transfer-Encoding: chunked\r\n", chunk("{}") + "zz\r\n", http.StatusBadRequest},
	}
	for _, route := range []struct{ method, path string }{
		{http.MethodPost, "/auth/logout"},
		{http.MethodPost, "/auth/refresh"},
		{http.MethodPost, "/auth/logout-all"},
		{http.MethodDelete, "/auth/sessions/"},
		{http.MethodGet, "/auth/sessions"},
		{http.MethodGet, "/profile"},
	} {
		for _, b := range bodies {
			t.Run(strings.ReplaceAll(route.path, "/", "_")+"/"+b.name, func(t *testing.T) {
				token := r.login(t, "ignored-body", "password-1")
				other := r.login(t, "ignored-body", "password-1")
				path := route.path
				if route.method == http.MethodDelete {
					path += current(t, r.sessions(t, other)).ID
				}
				got := rawRequest(t, r.addr, route.method+" "+path+" HTTP/1.1\r\nHost: localhost\r\nX-Session-Id: "+token+"\r\n"+b.header+"\r\n"+b.body).StatusCode
				if got != b.want {
					t.Errorf("got %d, want %d", got, b.want)
				}
				for _, tok := range []string{token, other} {
					if res := r.profile(t, tok); res.status != http.StatusOK {
						t.Errorf("a session answered %d after a refused request: it was changed", res.status)
					}
				}
			})
		}
	}
	// A small body is read and dropped, and the route works as without it.
	token := r.login(t, "ignored-body", "password-1")
	if got := rawRequest(t, r.addr, "POST /auth/logout HTTP/1.1\r\nHost: localhost\r\nX-Session-Id: "+token+"\r\nTransfer-Encoding: chunked\r\n\r\n"+chunk("{}")+"0\r\n\r\n").StatusCode; got != http.StatusOK {
		t.Errorf("logout with a small body: got %d, want 200", got)
	}
	if res := r.profile(t, token); res.status != http.StatusUnauthorized {
		t.Errorf("the session answered %d after its logout, want 401", res.status)
	}
}

// chunk is s as one chunk of a chunked body.
func chunk(s string) string { return strconv.FormatInt(int64(len(s)), 16) + "\r\n" + s + "\r\n" }

// rawRequest writes req on a new connection and reads the answer's
// header, which must come within 3 s: far below the 10 s read timeout
// that an answer waiting for a body would come at.
func rawRequest(t *testing.T, addr, req string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	// The server may answer and close before it has read everything.
	go func() { _, _ = conn.Write([]byte(req)) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer within 3 s: %v", err)
	}
	resp.Body.Close()
	return resp
}
