package redistest

import (
	"strconv"
	"testing"
)

// FillMemory makes the server refuse every write with OOM, as a Redis that
// is full under the noeviction policy does, while it still answers PING
// and reads. AcceptWrites undoes it.
func (s *Server) FillMemory(t testing.TB) {
	t.Helper()
	s.must(t, "CONFIG", "SET", "maxmemory-policy", "noeviction")
	s.must(t, "CONFIG", "SET", "maxmemory", "1")
}

// MakeReadOnly makes the server a read-only replica of a master that never
// answers, as a former master is after a failover: every write is refused
// with READONLY while PING and reads work. AcceptWrites undoes it.
func (s *Server) MakeReadOnly(t testing.TB) {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("finding a closed port: %v", err)
	}
	s.must(t, "CONFIG", "SET", "replica-read-only", "yes")
	s.must(t, "REPLICAOF", "127.0.0.1", strconv.Itoa(port))
}

// AcceptWrites undoes FillMemory and MakeReadOnly.
func (s *Server) AcceptWrites(t testing.TB) {
	t.Helper()
	s.must(t, "CONFIG", "SET", "maxmemory", "0")
	s.must(t, "REPLICAOF", "NO", "ONE")
}

func (s *Server) must(t testing.TB, args ...any) {
	t.Helper()
	if _, err := s.do(t, args...); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
}
