package redistest_test

import (
	"strings"

	"github.com/redis/go-redis/v9"

	"context"
	"testing"
	"time"

	"redis-session-app/services/api/internal/redistest"
)

func TestServer(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx := context.Background()

	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	srv.ResetStats(t)
	for range 3 {
		if err := c.Get(ctx, "k").Err(); err != nil {
			t.Fatalf("GET: %v", err)
		}
	}
	if got, want := srv.CommandStats(t)["get"], int64(3); got != want {
		t.Errorf("calls of get: got %v, want %v", got, want)
	}

	srv.FlushAll(t)
	if got, want := c.Exists(ctx, "k").Val(), int64(0); got != want {
		t.Errorf("EXISTS after FlushAll: got %v, want %v", got, want)
	}

	addr := srv.Addr()
	srv.Stop()
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := c.Ping(short).Err(); err == nil {
		t.Fatalf("PING after Stop: got nil error, want one")
	}

	srv.Restart()
	if got, want := srv.Addr(), addr; got != want {
		t.Errorf("Addr after Restart: got %v, want %v", got, want)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Errorf("PING after Restart with the same client: %v", err)
	}
}

func TestPauseResume(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}

	srv.Pause()
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := c.Ping(short).Err(); err == nil {
		t.Fatalf("PING while paused: got nil error, want a timeout")
	}

	srv.Resume()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Errorf("PING after Resume: %v", err)
	}
	srv.Pause() // the cleanup must end a paused server too
}

func TestStartCluster(t *testing.T) {
	srv := redistest.StartCluster(t)
	c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{srv.Addr(), srv.Addr()}})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()

	if err := c.Set(ctx, "{a}x", 1, 0).Err(); err != nil {
		t.Fatalf("SET through the cluster client: %v", err)
	}
	// Keys of two slots in one command are refused, as in a real cluster.
	if err := c.Do(ctx, "MSET", "a", 1, "b", 2).Err(); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Errorf("MSET across slots: got %v, want a CROSSSLOT error", err)
	}

	srv.Restart()
	if err := c.Set(ctx, "{a}x", 1, 0).Err(); err != nil {
		t.Errorf("SET after Restart: %v", err)
	}
}
