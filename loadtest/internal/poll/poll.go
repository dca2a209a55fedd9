// Package poll waits for a condition by checking it again and again until a
// deadline, instead of sleeping a fixed time that is too long on a fast
// machine and too short on a busy one.
package poll

import (
	"context"
	"time"
)

// Until calls check every interval until it returns nil, and returns nil
// then. Once timeout has passed it returns check's last error, and when ctx
// ends first it returns ctx's error. check runs at least once.
func Until(ctx context.Context, timeout, interval time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
