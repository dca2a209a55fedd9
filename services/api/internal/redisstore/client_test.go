package redisstore_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/redisstore"
)

// A login storm on a one-CPU replica must not run out of connections and
// pass for an outage; see NewClient.
func TestNewClientPool(t *testing.T) {
	c := redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{"127.0.0.1:1"}, Timeout: 300 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	rc, ok := c.(*redis.Client)
	if !ok {
		t.Fatalf("got %T for one address, want *redis.Client", c)
	}
	o := rc.Options()
	if o.PoolSize < 100 {
		t.Errorf("got PoolSize %d, want at least 100", o.PoolSize)
	}
	for name, got := range map[string]time.Duration{"dial": o.DialTimeout, "read": o.ReadTimeout, "write": o.WriteTimeout, "pool": o.PoolTimeout} {
		if got != 300*time.Millisecond {
			t.Errorf("got %s timeout %v, want 300ms", name, got)
		}
	}
	// go-redis stores the -1 ("none") that NewClient passes as 0.
	if o.MaxRetries != 0 {
		t.Errorf("got MaxRetries %d, want 0 (no retries)", o.MaxRetries)
	}
}
