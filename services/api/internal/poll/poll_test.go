package poll_test

import (
	"testing"
	"time"

	"redis-session-app/services/api/internal/poll"
)

func TestUntil(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		calls := 0
		got := poll.Until(time.Minute, time.Millisecond, func() bool {
			calls++
			return calls == 3
		})
		if !got || calls != 3 {
			t.Errorf("got %v after %d calls, want true after 3", got, calls)
		}
	})
	t.Run("ErrTimeout", func(t *testing.T) {
		calls := 0
		got := poll.Until(0, time.Millisecond, func() bool {
			calls++
			return false
		})
		if got || calls < 1 {
			t.Errorf("got %v after %d calls, want false after at least 1", got, calls)
		}
	})
}
