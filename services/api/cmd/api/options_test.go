package main

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"redis-session-app/services/api/internal/redistest"
)

// "OPTIONS *" is answered by the application like any unknown route: JSON
// 404 with X-Instance, not net/http's bare 200.
func TestOptionsAsterisk(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	r := startReplica(t, baseEnv(rs.Addr(), "opt-1"))

	conn, err := net.DialTimeout("tcp", r.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("got status %d, want 404", res.StatusCode)
	}
	if got := res.Header.Get("X-Instance"); got != "opt-1" {
		t.Errorf("got X-Instance %q, want %q", got, "opt-1")
	}
	if got := res.Header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
		t.Errorf("got Content-Type %q, want application/json", got)
	}
}
