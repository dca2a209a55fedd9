package poll_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"redis-session-app/loadtest/internal/poll"
)

func TestUntil(t *testing.T) {
	errNotYet := errors.New("not yet")
	t.Run("OK", func(t *testing.T) {
		calls := 0
		err := poll.Until(context.Background(), time.Minute, time.Millisecond, func() error {
			calls++
			if calls < 3 {
				return errNotYet
			}
			return nil
		})
		if err != nil || calls != 3 {
			t.Errorf("got %v after %d calls, want nil after 3", err, calls)
		}
	})
	t.Run("ErrTimeout", func(t *testing.T) {
		err := poll.Until(context.Background(), 0, time.Millisecond, func() error { return errNotYet })
		if !errors.Is(err, errNotYet) {
			t.Errorf("got %v, want %v", err, errNotYet)
		}
	})
	t.Run("ErrCanceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := poll.Until(ctx, time.Minute, time.Millisecond, func() error { return errNotYet })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want %v", err, context.Canceled)
		}
	})
}
