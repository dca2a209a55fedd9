package main

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
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
			conn, err := net.Dial("tcp", r.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// Declared, never sent.
			_, err = conn.Write([]byte("POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: " + tc.contentType +
				"\r\nContent-Length: " + strconv.Itoa(tc.length) + "\r\n\r\n"))
			if err != nil {
				t.Fatal(err)
			}
			// Far below the read timeout the answer would wait for.
			_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer before the client sent its body: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want || !resp.Close {
				t.Errorf("got %d, closing %v; want %d, closing", resp.StatusCode, resp.Close, tc.want)
			}
		})
	}
}
