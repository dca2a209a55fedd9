package ratelimit

import (
	"context"
	"strconv"
	"testing"
	"time"

	"redis-session-app/services/api/internal/redistest"
	"redis-session-app/services/api/internal/session"
)

// TestRefundIsMadeOnce: tries of one refund share a marker, so a try sent
// again after one whose answer was lost (made, but not known to be) gives
// nothing back twice; a refund without a marker is made every time.
func TestRefundIsMadeOnce(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx := context.Background()
	lim := session.Limit{Rate: 10, Period: time.Minute, Burst: 10}
	interval := lim.Period.Seconds() / float64(lim.Rate)
	tat := func(key string) float64 {
		t.Helper()
		v, err := strconv.ParseFloat(c.Get(ctx, key).Val(), 64)
		if err != nil {
			t.Fatalf("TAT of %s: %v", key, err)
		}
		return v
	}
	marker := func(key string) string {
		m, err := refundMarker(key)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tests := []struct {
		name    string
		marker  func(key string) string
		tries   int
		refunds int // events given back in all
	}{
		{"TriedThriceWithAMarker", marker, 3, 1},
		{"TriedOnceWithAMarker", marker, 1, 1},
		{"TwiceWithoutAMarker", func(string) string { return "" }, 2, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := "rate:rl:ip:" + tc.name
			if err := spend(ctx, c, time.Second, key, lim, 5); err != nil {
				t.Fatal(err)
			}
			before := tat(key)
			m := tc.marker(key)
			for range tc.tries {
				if err := refundN(ctx, c, time.Second, key, lim, 1, m); err != nil {
					t.Fatalf("refund: %v", err)
				}
			}
			// A microsecond's slack: the TAT is a float Redis formats.
			if got, want := before-tat(key), float64(tc.refunds)*interval; got < want-1e-6 || got > want+1e-6 {
				t.Errorf("given back %.6f s of the TAT, want %.6f s (%d events)", got, want, tc.refunds)
			}
		})
	}
}

// hashTag follows Redis Cluster's rule: the text between the first "{"
// and the first "}" after it, when not empty; else the whole key.
func TestHashTag(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{"rate:rl:sessions:{7oZwzX9XX8M}", "7oZwzX9XX8M"},
		{"rate:rl:ip:10.0.0.1", "rate:rl:ip:10.0.0.1"},
		{"a{}b", "a{}b"},
		{"a{b", "a{b"},
		{"a}b{c}", "c"},
		{"a{{b}}", "{b"},
		{"{x}{y}", "x"},
		{"", ""},
	} {
		if got := hashTag(tc.key); got != tc.want {
			t.Errorf("hashTag(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}
