package redistest

import (
	"os"
	"strings"
	"testing"
)

// TestWaitReadyRefusesAnotherServer: a server of another process on the
// port answers PING too, but is not the one started.
func TestWaitReadyRefusesAnotherServer(t *testing.T) {
	t.Parallel()
	other := Start(t)
	err := waitReady(other.Addr(), os.Getpid(), make(chan struct{}))
	if err == nil || !strings.Contains(err.Error(), "another server answers") {
		t.Fatalf("waitReady with the pid of a process that is not redis-server: got %v, want another server reported", err)
	}
	if err := waitReady(other.Addr(), other.cmd.Process.Pid, make(chan struct{})); err != nil {
		t.Fatalf("waitReady with redis-server's own pid: %v", err)
	}
}
