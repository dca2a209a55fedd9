package password

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// threadNice returns the nice value of the calling OS thread. The raw
// getpriority system call answers 20 - nice.
func threadNice(t *testing.T) int {
	t.Helper()
	p, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
	if err != nil {
		t.Fatalf("getpriority: %v", err)
	}
	return 20 - p
}

// TestHashRunsAtLowPriority: a hash runs on a thread of nice 19, and the
// caller's thread keeps its priority.
func TestHashRunsAtLowPriority(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := threadNice(t)
	var inside int
	if err := atLowPriority(func() error { inside = threadNice(t); return nil }); err != nil {
		t.Fatal(err)
	}
	if inside != 19 {
		t.Errorf("nice of the hashing thread: got %d, want 19", inside)
	}
	if after := threadNice(t); after != before {
		t.Errorf("nice of the caller's thread: got %d, want %d as before", after, before)
	}
}

// TestHasherHashesAtLowPriority: while a Hasher hashes, one of the
// process's threads runs at nice 19 (read from /proc, as an operator
// would see it with top -H).
func TestHasherHashesAtLowPriority(t *testing.T) {
	slow := DefaultParams()
	slow.Memory, slow.Iterations = 64*1024, 8 // long enough to be seen
	h, err := NewHasher(slow, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := h.Hash(context.Background(), "correct horse battery staple")
		done <- err
	}()
	for {
		if niceThreads(t) > 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the hash ended (err %v) and no thread ran at nice 19 meanwhile", err)
		case <-time.After(time.Millisecond):
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Hash: %v", err)
	}
}

// niceThreads counts the threads of this process whose nice value is 19.
func niceThreads(t *testing.T) int {
	t.Helper()
	stats, err := filepath.Glob("/proc/self/task/*/stat")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // the thread ended
		}
		// After the command name in parentheses: state is field 3,
		// nice field 19.
		rest := string(b[bytes.LastIndexByte(b, ')')+2:])
		if f := strings.Fields(rest); len(f) > 16 && f[16] == "19" {
			n++
		}
	}
	return n
}
