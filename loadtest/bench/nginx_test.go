package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"redis-session-app/loadtest/internal/poll"
)

// requireNginx makes sure the nginx the tests run is on PATH, and fails
// (not skips) when it is not installed: CI installs it (.ci/run).
func requireNginx(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("nginx"); err == nil {
		return
	}
	if st, err := os.Stat("/usr/sbin/nginx"); err == nil && st.Mode()&0o111 != 0 {
		t.Setenv("PATH", "/usr/sbin"+string(os.PathListSeparator)+os.Getenv("PATH"))
		return
	}
	t.Fatal("nginx is not installed: apt-get install nginx-light (make deps)")
}

// fakeReplicas are upstreams that speak HTTP/1.1 with keep-alive as the
// replicas do and answer 200 {"sessionId":"x"} to every request, except
// the first one that reaches any of them after dropNext: that one is read
// whole (header and body) and its connection then closed without an
// answer, as the kernel closes the connections of a replica SIGKILLed
// while it was working on a request.
type fakeReplicas struct {
	addrs []string
	mu    sync.Mutex
	drop  bool
	seen  []seenRequest
}

// seenRequest is a request whose header reached a fake replica.
type seenRequest struct {
	replica int
	path    string
	dropped bool
}

func startFakeReplicas(t *testing.T, n int) *fakeReplicas {
	t.Helper()
	f := &fakeReplicas{}
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		f.addrs = append(f.addrs, ln.Addr().String())
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				go f.serve(i, conn)
			}
		}()
	}
	return f
}

func (f *fakeReplicas) serve(replica int, conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		f.mu.Lock()
		drop := f.drop
		f.drop = false
		f.seen = append(f.seen, seenRequest{replica: replica, path: req.URL.Path, dropped: drop})
		f.mu.Unlock()
		if _, err := io.Copy(io.Discard, req.Body); err != nil || drop {
			return
		}
		const body = `{"sessionId":"x"}`
		if _, err := fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
			return
		}
	}
}

// reset forgets the requests seen so far and arms the drop when drop is set.
func (f *fakeReplicas) reset(drop bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen, f.drop = nil, drop
}

// requests returns the requests to path seen since reset.
func (f *fakeReplicas) requests(path string) []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []seenRequest
	for _, s := range f.seen {
		if s.path == path {
			out = append(out, s)
		}
	}
	return out
}

// How a test client sends its body.
type sendMode int

const (
	// oneWrite: header and body in one write, as ordinary clients send a
	// small JSON body.
	oneWrite sendMode = iota
	// halfThenRest: header and half the body, then, once the request has
	// reached a replica (or a second has passed), the rest.
	halfThenRest
	// expectContinue: the header with Expect: 100-continue, the body after
	// nginx's 100 Continue.
	expectContinue
)

// TestNginxResendsOnlyAPreReadLogin runs the repository's nginx.conf on the
// host in front of two fake replicas, one of which drops the first request
// of each case, and checks which requests nginx sends again: a login whose
// body arrived with its header is resent (nginx still holds the body), a
// register never is, and a login body that did not arrive with its header
// is streamed to the replica as it comes (so the replica's ReadTimeout
// bounds it in total) and, having been streamed, is not resent.
func TestNginxResendsOnlyAPreReadLogin(t *testing.T) {
	replicas := startFakeReplicas(t, 2)
	addr, _ := startProdNginx(t, replicas.addrs)

	tests := []struct {
		name string
		path string
		send sendMode
		// Header lines besides Host, Content-Type and Content-Length.
		extra string
		drop  bool
		want  int
		// Times the fake replicas saw the request.
		seen int
	}{
		{"LoginInOneWriteIsResent", "/auth/login", oneWrite, "", true, http.StatusOK, 2},
		// Beyond client_header_buffer_size (1k): the body is pre-read all
		// the same when it came with the header.
		{"LoginWithLargeHeaderInOneWriteIsResent", "/auth/login", oneWrite, largeCookie, true, http.StatusOK, 2},
		{"RegisterInOneWriteIsNotResent", "/auth/register", oneWrite, "", true, http.StatusBadGateway, 1},
		{"RefreshInOneWriteIsNotResent", "/auth/refresh", oneWrite, "", true, http.StatusBadGateway, 1},
		{"LogoutInOneWriteIsNotResent", "/auth/logout", oneWrite, "", true, http.StatusBadGateway, 1},
		{"LogoutAllInOneWriteIsNotResent", "/auth/logout-all", oneWrite, "", true, http.StatusBadGateway, 1},
		{"LoginHalfThenRestIsStreamed", "/auth/login", halfThenRest, "", false, http.StatusOK, 1},
		{"LoginHalfThenRestIsNotResent", "/auth/login", halfThenRest, "", true, http.StatusBadGateway, 1},
		{"LoginAfter100ContinueIsNotResent", "/auth/login", expectContinue, "", true, http.StatusBadGateway, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			replicas.reset(tc.drop)
			status, body := sendLogin(t, addr, tc.path, tc.extra, tc.send, func() []seenRequest { return replicas.requests(tc.path) })
			seen := replicas.requests(tc.path)
			t.Logf("%s: %d %s; the replicas saw it %d time(s): %+v", tc.path, status, strings.TrimSpace(body), len(seen), seen)
			if status != tc.want {
				t.Errorf("got %d %q, want %d", status, body, tc.want)
			}
			if status == http.StatusBadGateway && strings.TrimSpace(body) != `{"error":"Bad gateway"}` {
				t.Errorf("got body %q, want nginx's JSON 502", body)
			}
			if len(seen) != tc.seen {
				t.Errorf("the replicas saw the request %d time(s), want %d", len(seen), tc.seen)
			}
		})
	}
}

// largeCookie is a header line of 3,000 bytes.
var largeCookie = "Cookie: c=" + strings.Repeat("x", 2988) + "\r\n"

// sendLogin sends one POST of a login-sized JSON body to nginx at addr in
// the given way and returns the answer. seen reports the requests that have
// reached a replica: with halfThenRest, the first half must have been
// passed on to one within a second, before the rest is sent.
func sendLogin(t *testing.T, addr, path, extra string, mode sendMode, seen func() []seenRequest) (int, string) {
	t.Helper()
	const body = `{"username":"resend-test","password":"correct horse battery staple"}`
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	header := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n%s", path, len(body), extra)
	write := func(s string) {
		t.Helper()
		if _, err := io.WriteString(conn, s); err != nil {
			t.Fatal(err)
		}
	}
	switch mode {
	case oneWrite:
		write(header + "\r\n" + body)
	case halfThenRest:
		write(header + "\r\n" + body[:len(body)/2])
		start := time.Now()
		err := poll.Until(context.Background(), time.Second, 10*time.Millisecond, func() error {
			if len(seen()) == 0 {
				return fmt.Errorf("no replica has %s's request line %v after nginx got the header and half the body: nginx holds the body instead of streaming it", path, time.Since(start).Round(time.Millisecond))
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		} else {
			t.Logf("the request reached a replica %v after the header and half the body, before the rest was sent", time.Since(start).Round(time.Millisecond))
		}
		write(body[len(body)/2:])
	case expectContinue:
		write(header + "Expect: 100-continue\r\n\r\n")
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("waiting for 100 Continue: %v", err)
		}
		if res.StatusCode != http.StatusContinue {
			t.Fatalf("got %d, want 100 Continue", res.StatusCode)
		}
		write(body)
	}
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer res.Body.Close()
	got, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading the answer's body: %v", err)
	}
	return res.StatusCode, string(got)
}
