package password

import (
	"strings"
	"testing"
)

// TestLowPriorityPanicIsAnError: a panic on the hashing thread comes back
// to the caller as an error instead of ending the process.
func TestLowPriorityPanicIsAnError(t *testing.T) {
	err := atLowPriority(func() error { panic("argon2: bad parameters") })
	if err == nil || !strings.Contains(err.Error(), "argon2: bad parameters") {
		t.Errorf("atLowPriority of a panicking function: got %v, want an error naming the panic", err)
	}
}
