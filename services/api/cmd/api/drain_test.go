package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"redis-session-app/services/api/internal/poll"
)

// TestDrainClosesConnections checks that a draining replica lets go of its
// keep-alive connections while it still serves: every response during
// SHUTDOWN_DELAY carries Connection: close and is followed by the close,
// on a connection opened before the drain as on a new one. A proxy then
// no longer holds any connection that Shutdown would close under it.
func TestDrainClosesConnections(t *testing.T) {
	t.Parallel()
	// Long enough that the checks below fit in it on a loaded CI machine.
	const delay = 3 * time.Second
	r := startReplica(t, baseEnv(closedAddr(t), "drain-conns").with("SHUTDOWN_DELAY", delay.String()))

	pooled := dialReplica(t, r)
	if res := healthz(t, pooled); res.StatusCode != http.StatusOK || res.Close {
		t.Fatalf("GET /healthz before draining: got %d, close %v, want 200 on a connection kept alive", res.StatusCode, res.Close)
	}

	start := time.Now()
	r.cancel()
	poll.For(t, time.Second, "/readyz to answer 503", func() bool {
		res, err := r.try(http.MethodGet, "/readyz", "", nil)
		return err == nil && res.status == http.StatusServiceUnavailable
	})

	for _, tc := range []struct {
		name string
		conn bufferedConn
	}{
		{"OpenedBefore", pooled},
		{"OpenedWhileDraining", dialReplica(t, r)},
	} {
		// res.Close is what the response's Connection header said.
		if res := healthz(t, tc.conn); res.StatusCode != http.StatusOK || !res.Close {
			t.Errorf("%s: GET /healthz while draining: got %d, close %v, want 200 with Connection: close",
				tc.name, res.StatusCode, res.Close)
		}
		if err := closedByServer(tc.conn.Conn); err != nil {
			t.Errorf("%s: after the response: %v, want the connection closed", tc.name, err)
		}
	}
	if served := time.Since(start); served >= delay {
		t.Fatalf("checks took %v, longer than the %v delay they had to fit in", served, delay)
	}

	if err := r.stop(); err != nil {
		t.Fatalf("run got %v, want nil", err)
	}
}

// bufferedConn is a client connection with the reader its responses are
// parsed from.
type bufferedConn struct {
	net.Conn
	rd *bufio.Reader
}

func dialReplica(t *testing.T, r *replica) bufferedConn {
	t.Helper()
	conn, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return bufferedConn{conn, bufio.NewReader(conn)}
}

// healthz sends GET /healthz on c as HTTP/1.1 (keep-alive unless the
// server says otherwise) and reads the response in full.
func healthz(t *testing.T, c bufferedConn) *http.Response {
	t.Helper()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		t.Fatalf("sending GET /healthz: %v", err)
	}
	res, err := http.ReadResponse(c.rd, nil)
	if err != nil {
		t.Fatalf("reading the response to GET /healthz: %v", err)
	}
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		t.Fatalf("reading the body of GET /healthz: %v", err)
	}
	res.Body.Close()
	return res
}

// closedByServer reports nil when the server closes conn within a second,
// with nothing more sent on it.
func closedByServer(conn net.Conn) error {
	if err := conn.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	n, err := conn.Read(make([]byte, 1))
	switch {
	case n > 0:
		return errors.New("got more bytes")
	case errors.Is(err, io.EOF):
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errors.New("still open after 1s")
	default:
		return err
	}
}
