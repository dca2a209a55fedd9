// Package poll waits for a condition by checking it again and again until a
// deadline. Tests wait this way for what they need instead of sleeping a
// fixed time, which is too long on a fast machine and too short on a busy
// one.
package poll

import (
	"testing"
	"time"
)

// Until calls cond every interval until it returns true, and reports
// whether it did so before timeout passed. cond runs at least once, and once
// more after the deadline, so a condition that just came true still counts.
// A caller that needs to know why cond failed keeps its last error in a
// variable the closure sets.
func Until(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
	return true
}

// For fails t unless cond holds within timeout, checking every 10 ms; what
// names the awaited state in the failure.
func For(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Until(timeout, 10*time.Millisecond, cond) {
		t.Fatalf("waited %v for %s", timeout, what)
	}
}
