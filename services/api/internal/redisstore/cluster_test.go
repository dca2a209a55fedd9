package redisstore_test

import (
	"context"
	"testing"
	"time"

	"redis-session-app/services/api/internal/redisstore"
	"redis-session-app/services/api/internal/redistest"
)

// TestCluster goes through every operation with a Redis Cluster client: a
// script whose keys were not all in one hash slot would fail with
// CROSSSLOT.
func TestCluster(t *testing.T) {
	srv := redistest.StartCluster(t)
	rdb := redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr(), srv.Addr()}, Timeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	c := newClock()
	store := redisstore.NewSessions(rdb, redisstore.SessionOptions{IdleTimeout: time.Hour, MaxPerUser: 2, Now: c.Now})
	users := redisstore.NewUsers(rdb)
	ctx := context.Background()

	u := register(t, users, "Alice")
	var tokens []string
	for range 3 {
		tokens = append(tokens, create(t, store, u.ID).Token)
		c.Advance(time.Second)
	}
	c.Advance(45 * time.Minute)
	s := lookup(t, store, tokens[2]) // touches
	refreshed, err := store.Refresh(ctx, tokens[2])
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	list, err := store.List(ctx, u.ID)
	if err != nil || len(list) != 2 {
		t.Fatalf("List: got %v, %v, want 2 sessions", list, err)
	}
	if err := store.RevokeByID(ctx, tokens[1], s.ID); err != nil {
		t.Fatalf("RevokeByID: %v", err)
	}
	_, err = store.Lookup(ctx, refreshed.Token)
	wantNotFound(t, "Lookup after RevokeByID", err)
	if err := store.Revoke(ctx, tokens[1]); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	last := create(t, store, u.ID)
	if n, err := store.RevokeAll(ctx, last.Token); err != nil || n != 1 {
		t.Errorf("RevokeAll: got %v, %v, want 1", n, err)
	}
}
