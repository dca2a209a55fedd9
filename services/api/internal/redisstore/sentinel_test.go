package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/redisstore"
	"redis-session-app/services/api/internal/redistest"
)

// TestSentinel connects the way REDIS_ADDR plus REDIS_MASTER_NAME does: to
// a Sentinel, which names the master. Users and sessions must land on that
// master and work as with a direct connection.
func TestSentinel(t *testing.T) {
	master := redistest.Start(t)
	sentinel := redistest.StartSentinel(t, master)
	rdb := redisstore.NewClient(redisstore.ClientOptions{
		Addrs:      []string{sentinel.Addr()},
		MasterName: redistest.SentinelMasterName,
		Timeout:    time.Second,
	})
	t.Cleanup(func() { _ = rdb.Close() })
	if _, ok := rdb.(*redis.Client); !ok {
		t.Fatalf("got %T for a master name, want the failover *redis.Client", rdb)
	}
	store := redisstore.NewSessions(rdb, redisstore.SessionOptions{})
	users := redisstore.NewUsers(rdb)
	ctx := context.Background()

	u := register(t, users, "Sentinel")
	issued := create(t, store, u.ID)
	if got := lookup(t, store, issued.Token); got.ID != issued.Session.ID {
		t.Errorf("Lookup: got session %q, want %q", got.ID, issued.Session.ID)
	}

	// The data is on the master itself, not on the Sentinel.
	direct := master.Client(t)
	n, err := direct.Exists(ctx, "user:sentinel").Result()
	if err != nil || n != 1 {
		t.Errorf("EXISTS user:sentinel on the master: got %d, %v, want 1", n, err)
	}
}
