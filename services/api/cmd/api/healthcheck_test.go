package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"redis-session-app/services/api/internal/redistest"
)

// portOf returns the port of a host:port address.
func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	ready := startReplica(t, baseEnv(redistest.Start(t).Addr(), "ready"))
	// A replica whose Redis refuses connections is live but not ready.
	unready := startReplica(t, baseEnv(closedAddr(t), "unready"))

	tests := []struct {
		name    string
		env     env
		wantErr string
	}{
		{name: "OK", env: env{"PORT": portOf(t, ready.addr)}},
		{name: "ErrNotReady", env: env{"PORT": portOf(t, unready.addr)}, wantErr: "got 503 Service Unavailable, want 200"},
		{name: "ErrNothingListening", env: env{"PORT": portOf(t, closedAddr(t))}, wantErr: "connection refused"},
		{name: "ErrPortZero", env: env{"PORT": "0"}, wantErr: "PORT is 0"},
		{name: "ErrBadPort", env: env{"PORT": "http"}, wantErr: "not an integer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := healthcheck(context.Background(), tc.env.getenv)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

// The flag as a container runs it: `api -healthcheck` exits 0 or 1.
func TestHealthcheckFlagExitStatus(t *testing.T) {
	t.Parallel()
	ready := startReplica(t, baseEnv(redistest.Start(t).Addr(), "ready"))
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		port string
		want int
	}{
		{name: "ReadyExits0", port: portOf(t, ready.addr), want: 0},
		{name: "NothingListeningExits1", port: portOf(t, closedAddr(t)), want: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(exe, "-healthcheck")
			cmd.Env = []string{runMainEnv + "=1", "PORT=" + tc.port}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if got := exitStatus(t, cmd.Run()); got != tc.want {
				t.Errorf("exit got %d, want %d; stderr: %s", got, tc.want, stderr.String())
			}
		})
	}
}
