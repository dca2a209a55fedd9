package redisstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/redisstore"
	"redis-session-app/services/api/internal/redistest"
)

// getCounter counts GETs sent on their own and GETs sent in pipelines.
type getCounter struct {
	alone, piped atomic.Int64
	pipelines    atomic.Int64
}

func (h *getCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *getCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "get" {
			h.alone.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h *getCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.pipelines.Add(1)
		for _, cmd := range cmds {
			if cmd.Name() == "get" {
				h.piped.Add(1)
			}
		}
		return next(ctx, cmds)
	}
}

// TestLookupsArePipelined: the GETs of concurrent lookups go to Redis as
// pipelines, fewer pipelines than lookups, and each lookup still gets its
// own session.
func TestLookupsArePipelined(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr()}, Timeout: 500 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	store := redisstore.NewSessions(rdb, redisstore.SessionOptions{IdleTimeout: time.Hour})
	users := redisstore.NewUsers(rdb)
	const n = 200
	tokens := make([]string, n)
	ids := make([]string, n)
	for i := range tokens {
		iss := create(t, store, register(t, users, fmt.Sprintf("user%03d", i)).ID)
		tokens[i], ids[i] = iss.Token, iss.Session.ID
	}
	var h getCounter
	rdb.AddHook(&h)

	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, tok := range tokens {
		wg.Go(func() {
			<-start
			sess, err := store.Lookup(context.Background(), tok)
			if err != nil || sess.ID != ids[i] {
				t.Errorf("lookup %d: got session %q, err %v; want %q", i, sess.ID, err, ids[i])
			}
		})
	}
	close(start)
	wg.Wait()
	if got := h.alone.Load(); got != 0 {
		t.Errorf("GETs sent on their own: got %d, want 0", got)
	}
	if got := h.piped.Load(); got != n {
		t.Errorf("GETs sent in pipelines: got %d, want %d", got, n)
	}
	if got := h.pipelines.Load(); got >= n {
		t.Errorf("pipelines for %d concurrent lookups: got %d, want fewer", n, got)
	}
	t.Logf("%d concurrent lookups in %d pipelines", n, h.pipelines.Load())
}
