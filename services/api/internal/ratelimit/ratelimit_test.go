package ratelimit_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/httpapi"
	"redis-session-app/services/api/internal/poll"
	"redis-session-app/services/api/internal/ratelimit"
	"redis-session-app/services/api/internal/redistest"
	"redis-session-app/services/api/internal/session"
)

var _ httpapi.RateLimiter = (*ratelimit.Limiter)(nil)

// Per hour, so that nothing recovers while a test runs. The sessions limit
// has a burst larger than its rate, as SESSIONS_LIMIT_PER_USER does.
var (
	perUser     = session.Limit{Rate: 3, Period: time.Hour}
	perIP       = session.Limit{Rate: 5, Period: time.Hour}
	perSessions = session.Limit{Rate: 2, Period: time.Hour, Burst: 4}
)

// newLimiter is a Limiter with the given login limits and perSessions,
// for listings of at most ten sessions: a listing reserves one unit, so
// that AllowSessions alone counts one event as AllowLogin does. The
// reservation of larger listings has tests of its own.
func newLimiter(c redis.UniversalClient, perUser, perIP session.Limit) *ratelimit.Limiter {
	return ratelimit.New(c, ratelimit.Limits{
		LoginPerUser: perUser, LoginPerIP: perIP, SessionsPerUser: perSessions,
		MaxListed: ratelimit.SessionsPerListingUnit,
	})
}

// newCapLimiter is a Limiter whose sessions limit is lim, for listings of
// up to ratelimit.DefaultMaxListed sessions.
func newCapLimiter(c redis.UniversalClient, lim session.Limit) *ratelimit.Limiter {
	return ratelimit.New(c, ratelimit.Limits{LoginPerUser: perUser, LoginPerIP: perIP, SessionsPerUser: lim})
}

func login(t *testing.T, l *ratelimit.Limiter, ip, username string) session.RateDecision {
	t.Helper()
	d, err := l.AllowLogin(context.Background(), ip, username)
	if err != nil {
		t.Fatalf("AllowLogin(%q, %q): %v", ip, username, err)
	}
	return d
}

// drain makes n attempts that must all be allowed.
func drain(t *testing.T, l *ratelimit.Limiter, ip, username string, n int) {
	t.Helper()
	for i := range n {
		if d := login(t, l, ip, username); !d.Allowed {
			t.Fatalf("attempt %d of %q from %s: got %+v, want allowed", i+1, username, ip, d)
		}
	}
}

func wantRefused(t *testing.T, d session.RateDecision, limit string) {
	t.Helper()
	if d.Allowed {
		t.Fatalf("got %+v, want refused by %q", d, limit)
	}
	if d.Limit != limit {
		t.Errorf("got limit %q, want %q", d.Limit, limit)
	}
	if d.RetryAfter <= 0 {
		t.Errorf("got RetryAfter %v, want > 0", d.RetryAfter)
	}
}

func TestAllowLogin(t *testing.T) {
	srv := redistest.Start(t)

	t.Run("UserBurstThenRefused", func(t *testing.T) {
		l := newLimiter(srv.Client(t), perUser, perIP)
		drain(t, l, "10.0.0.1", "burst", perUser.Rate)
		d := login(t, l, "10.0.0.1", "burst")
		wantRefused(t, d, session.LimitUser)
		// One of three per hour: the next one is some 20 minutes away.
		if d.RetryAfter < 19*time.Minute || d.RetryAfter > 20*time.Minute {
			t.Errorf("got RetryAfter %v, want about 20m", d.RetryAfter)
		}
	})

	t.Run("IPBurstThenRefused", func(t *testing.T) {
		l := newLimiter(srv.Client(t), perUser, perIP)
		for i := range perIP.Rate {
			// A new username each time: only the IP limit fills up.
			if d := login(t, l, "10.0.0.2", "ipuser"+string(rune('a'+i))); !d.Allowed {
				t.Fatalf("attempt %d: got %+v, want allowed", i+1, d)
			}
		}
		wantRefused(t, login(t, l, "10.0.0.2", "ipuser-fresh"), session.LimitIP)
		wantRefused(t, login(t, l, "10.0.0.2", ""), session.LimitIP)
	})

	t.Run("UsernamesIgnoreCase", func(t *testing.T) {
		l := newLimiter(srv.Client(t), perUser, perIP)
		for i, name := range []string{"Alice", "alice", "ALICE"} {
			// Different IPs, so that only the user limit is shared.
			if d := login(t, l, "10.0.1."+string(rune('1'+i)), name); !d.Allowed {
				t.Fatalf("%s: got %+v, want allowed", name, d)
			}
		}
		wantRefused(t, login(t, l, "10.0.1.9", "aLiCe"), session.LimitUser)
	})

	t.Run("ReplicasShareCounts", func(t *testing.T) {
		// Two limiters, two connections: two replicas on one Redis.
		a := newLimiter(srv.Client(t), perUser, perIP)
		b := newLimiter(srv.Client(t), perUser, perIP)
		drain(t, a, "10.0.2.1", "shared", 2)
		drain(t, b, "10.0.2.2", "shared", 1)
		wantRefused(t, login(t, a, "10.0.2.3", "shared"), session.LimitUser)
		wantRefused(t, login(t, b, "10.0.2.4", "shared"), session.LimitUser)
	})

	t.Run("LimitsIndependent", func(t *testing.T) {
		l := newLimiter(srv.Client(t), perUser, perIP)
		drain(t, l, "10.0.3.1", "indep", perUser.Rate)
		wantRefused(t, login(t, l, "10.0.3.1", "indep"), session.LimitUser)
		// The same IP may still try other users, and the user is refused
		// from anywhere.
		if d := login(t, l, "10.0.3.1", "indep-other"); !d.Allowed {
			t.Errorf("other user from same IP: got %+v, want allowed", d)
		}
		wantRefused(t, login(t, l, "10.0.3.2", "indep"), session.LimitUser)
	})

	t.Run("RefusedByIPStillCountsForUser", func(t *testing.T) {
		l := newLimiter(srv.Client(t), perUser, perIP)
		for i := range perIP.Rate {
			drain(t, l, "10.0.4.1", "filler"+string(rune('a'+i)), 1)
		}
		// Refused by the IP limit, yet each attempt uses up the user's.
		for range perUser.Rate {
			wantRefused(t, login(t, l, "10.0.4.1", "victim"), session.LimitIP)
		}
		wantRefused(t, login(t, l, "10.0.4.2", "victim"), session.LimitUser)
	})

	t.Run("BothRefuseNamesLongerWait", func(t *testing.T) {
		// The user limit recovers far more slowly than the IP limit.
		l := newLimiter(srv.Client(t), session.Limit{Rate: 1, Period: time.Hour}, session.Limit{Rate: 1, Period: time.Second})
		drain(t, l, "10.0.5.1", "both", 1)
		d := login(t, l, "10.0.5.1", "both")
		wantRefused(t, d, session.LimitUser)
		if d.RetryAfter < 59*time.Minute {
			t.Errorf("got RetryAfter %v, want about 1h", d.RetryAfter)
		}

		// And the other way round.
		l = newLimiter(srv.Client(t), session.Limit{Rate: 1, Period: time.Second}, session.Limit{Rate: 1, Period: time.Hour})
		drain(t, l, "10.0.5.2", "both2", 1)
		wantRefused(t, login(t, l, "10.0.5.2", "both2"), session.LimitIP)
	})

	t.Run("IPv6By64", func(t *testing.T) {
		l := newLimiter(srv.Client(t), perUser, session.Limit{Rate: 2, Period: time.Hour})
		drain(t, l, "2001:db8:1:2::1", "", 1)
		drain(t, l, "2001:db8:1:2:ffff::9", "", 1)
		wantRefused(t, login(t, l, "2001:db8:1:2::abcd", ""), session.LimitIP)
		drain(t, l, "2001:db8:1:3::1", "", 1)
	})

	t.Run("IPv4MappedIsIPv4", func(t *testing.T) {
		l := newLimiter(srv.Client(t), perUser, session.Limit{Rate: 1, Period: time.Hour})
		drain(t, l, "10.0.6.1", "", 1)
		wantRefused(t, login(t, l, "::ffff:10.0.6.1", ""), session.LimitIP)
	})
}

func TestAllowRegister(t *testing.T) {
	srv := redistest.Start(t)
	l := newLimiter(srv.Client(t), perUser, perIP)
	ctx := context.Background()

	for i := range perIP.Rate - 1 {
		d, err := l.AllowRegister(ctx, "10.1.0.1")
		if err != nil || !d.Allowed {
			t.Fatalf("register %d: got %+v, %v, want allowed", i+1, d, err)
		}
	}
	// Logins and registers share the IP limit.
	drain(t, l, "10.1.0.1", "reg", 1)
	d, err := l.AllowRegister(ctx, "10.1.0.1")
	if err != nil {
		t.Fatal(err)
	}
	wantRefused(t, d, session.LimitIP)

	if d, err := l.AllowRegister(ctx, "10.1.0.2"); err != nil || !d.Allowed {
		t.Errorf("other IP: got %+v, %v, want allowed", d, err)
	}
}

func sessions(t *testing.T, l *ratelimit.Limiter, userID string) session.RateDecision {
	t.Helper()
	d, err := l.AllowSessions(context.Background(), userID)
	if err != nil {
		t.Fatalf("AllowSessions(%q): %v", userID, err)
	}
	return d
}

// list makes a listing of listed sessions, as the handler does: admitted,
// then settled.
func list(t *testing.T, l *ratelimit.Limiter, userID string, listed int) session.RateDecision {
	t.Helper()
	d := sessions(t, l, userID)
	if d.Allowed {
		if err := l.ChargeListing(context.Background(), userID, listed); err != nil {
			t.Fatalf("ChargeListing(%q, %d): %v", userID, listed, err)
		}
	}
	return d
}

func TestAllowSessions(t *testing.T) {
	srv := redistest.Start(t)

	t.Run("BurstThenRefused", func(t *testing.T) {
		l := newLimiter(srv.Client(t), perUser, perIP)
		for i := range perSessions.Burst {
			if d := sessions(t, l, "uid-burst"); !d.Allowed {
				t.Fatalf("request %d: got %+v, want allowed within the burst of %d", i+1, d, perSessions.Burst)
			}
		}
		d := sessions(t, l, "uid-burst")
		wantRefused(t, d, session.LimitSessions)
		// Two per hour: the next one is some 30 minutes away.
		if d.RetryAfter < 29*time.Minute || d.RetryAfter > 30*time.Minute {
			t.Errorf("got RetryAfter %v, want about 30m", d.RetryAfter)
		}
	})

	t.Run("PerUser", func(t *testing.T) {
		l := newLimiter(srv.Client(t), perUser, perIP)
		for range perSessions.Burst {
			sessions(t, l, "uid-greedy")
		}
		wantRefused(t, sessions(t, l, "uid-greedy"), session.LimitSessions)
		if d := sessions(t, l, "uid-other"); !d.Allowed {
			t.Errorf("another user: got %+v, want allowed", d)
		}
	})

	t.Run("ReplicasShareCounts", func(t *testing.T) {
		a := newLimiter(srv.Client(t), perUser, perIP)
		b := newLimiter(srv.Client(t), perUser, perIP)
		for i := range perSessions.Burst {
			if d := sessions(t, []*ratelimit.Limiter{a, b}[i%2], "uid-shared"); !d.Allowed {
				t.Fatalf("request %d: got %+v, want allowed", i+1, d)
			}
		}
		wantRefused(t, sessions(t, a, "uid-shared"), session.LimitSessions)
		wantRefused(t, sessions(t, b, "uid-shared"), session.LimitSessions)
	})

	t.Run("ApartFromLogin", func(t *testing.T) {
		// A user id that is also someone's username: the two limits
		// never share a key.
		l := newLimiter(srv.Client(t), perUser, perIP)
		for range perSessions.Burst {
			sessions(t, l, "apart")
		}
		drain(t, l, "10.0.7.1", "apart", perUser.Rate)
		wantRefused(t, login(t, l, "10.0.7.1", "apart"), session.LimitUser)
	})
}

// TestChargeListing: a listing costs one unit per ten sessions it
// returned. AllowSessions reserves the cost of the largest listing (ten
// units here), ChargeListing gives back what the listing did not use, or
// charges a listing larger than the reservation the rest, even past what
// the budget has left.
func TestChargeListing(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	// Ten an hour: one unit is six minutes.
	lim := session.Limit{Rate: 10, Period: time.Hour}
	tests := []struct {
		listed int
		left   int // listings the budget still allows after this one
		wait   time.Duration
	}{
		{listed: 0, left: 9},
		{listed: 1, left: 9},
		{listed: 10, left: 9},
		{listed: 11, left: 8},
		{listed: 20, left: 8},
		{listed: 90, left: 1},
		{listed: 95, left: 0, wait: 6 * time.Minute},
		{listed: 100, left: 0, wait: 6 * time.Minute},
		// Larger than the reservation, and past the budget: the user
		// waits until the listing is paid.
		{listed: 101, left: 0, wait: 12 * time.Minute},
		{listed: 1000, left: 0, wait: 546 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.listed), func(t *testing.T) {
			l := newCapLimiter(c, lim)
			uid := "uid-charge-" + strconv.Itoa(tc.listed)
			if d := sessions(t, l, uid); !d.Allowed {
				t.Fatalf("first listing: got %+v, want allowed", d)
			}
			if err := l.ChargeListing(context.Background(), uid, tc.listed); err != nil {
				t.Fatalf("ChargeListing: %v", err)
			}
			for i := range tc.left {
				if d := list(t, l, uid, 1); !d.Allowed {
					t.Fatalf("listing %d after the charge: got %+v, want allowed", i+1, d)
				}
			}
			d := sessions(t, l, uid)
			wantRefused(t, d, session.LimitSessions)
			if tc.wait > 0 && (d.RetryAfter < tc.wait-time.Minute || d.RetryAfter > tc.wait) {
				t.Errorf("RetryAfter: got %v, want about %v", d.RetryAfter, tc.wait)
			}
		})
	}
	t.Run("ClientHungUp", func(t *testing.T) {
		// The listing has been made: a client hanging up after it
		// still gets back what it did not use, and still pays a listing
		// larger than the reservation.
		l := newCapLimiter(c, lim)
		gone, cancel := context.WithCancel(context.Background())
		cancel()
		sessions(t, l, "uid-charge-hungup")
		if err := l.ChargeListing(gone, "uid-charge-hungup", 1); err != nil {
			t.Fatalf("ChargeListing: %v", err)
		}
		if d := sessions(t, l, "uid-charge-hungup"); !d.Allowed {
			t.Fatalf("after the first listing was settled: got %+v, want allowed", d)
		}
		if err := l.ChargeListing(gone, "uid-charge-hungup", 200); err != nil {
			t.Fatalf("ChargeListing: %v", err)
		}
		wantRefused(t, sessions(t, l, "uid-charge-hungup"), session.LimitSessions)
	})
	t.Run("RoundTrips", func(t *testing.T) {
		// A listing that cost its reservation asks nothing more of
		// Redis; any other takes one script to settle.
		l := newCapLimiter(c, session.Limit{Rate: 1000, Period: time.Hour})
		for _, tc := range []struct{ listed, scripts int64 }{
			{0, 1}, {1, 1}, {ratelimit.SessionsPerListingUnit, 1}, {90, 1},
			{91, 0}, {ratelimit.DefaultMaxListed, 0}, {ratelimit.DefaultMaxListed + 1, 1},
		} {
			sessions(t, l, "uid-trips")
			srv.ResetStats(t)
			if err := l.ChargeListing(context.Background(), "uid-trips", int(tc.listed)); err != nil {
				t.Fatalf("ChargeListing(%d): %v", tc.listed, err)
			}
			stats := srv.CommandStats(t)
			if n := stats["evalsha"] + stats["eval"]; n != tc.scripts {
				t.Errorf("ChargeListing(%d): Redis ran %d scripts, want %d", tc.listed, n, tc.scripts)
			}
		}
	})
}

// TestAllowSessionsReserves: a listing admitted holds the cost of the
// largest listing until it is settled, so that listings admitted before
// any of them is settled cannot spend more than the budget (the last
// one may run into debt), and a 503's refund gives all of it back.
func TestAllowSessionsReserves(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	// A burst of 25 units: two listings of the cap (10 units) and the
	// third, with 5 left, in debt.
	lim := session.Limit{Rate: 1, Period: time.Hour, Burst: 25}
	t.Run("Unsettled", func(t *testing.T) {
		l := newCapLimiter(c, lim)
		for i := range 3 {
			if d := sessions(t, l, "uid-unsettled"); !d.Allowed {
				t.Fatalf("listing %d: got %+v, want allowed", i+1, d)
			}
		}
		d := sessions(t, l, "uid-unsettled")
		wantRefused(t, d, session.LimitSessions)
		// 30 units spent of 25: 6 to pay back before one is left.
		if d.RetryAfter < 5*time.Hour+59*time.Minute || d.RetryAfter > 6*time.Hour {
			t.Errorf("RetryAfter: got %v, want about 6h", d.RetryAfter)
		}
	})
	t.Run("Settled", func(t *testing.T) {
		// Settled one by one, listings of one session get the whole
		// burst, one unit each.
		l := newCapLimiter(c, lim)
		for i := range lim.Burst {
			if d := list(t, l, "uid-settled", 1); !d.Allowed {
				t.Fatalf("listing %d: got %+v, want allowed", i+1, d)
			}
		}
		wantRefused(t, list(t, l, "uid-settled", 1), session.LimitSessions)
	})
	t.Run("RefundedWhole", func(t *testing.T) {
		l := newCapLimiter(c, lim)
		const key = "rate:rl:sessions:{uid-reserve-refunded}"
		list(t, l, "uid-reserve-refunded", 1)
		before := srv.Strings(t, []string{key})
		sessions(t, l, "uid-reserve-refunded")
		l.RefundSessions(context.Background(), "uid-reserve-refunded")
		poll.For(t, 5*time.Second, "the reservation to be given back", func() bool {
			return redistest.SameFloat(srv.Strings(t, []string{key})[key], before[key])
		})
	})
}

// TestRefund: what a refund gives back can be spent again, on every
// limit, and a refund of a limit with nothing counted writes nothing.
func TestRefund(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx := context.Background()
	l := newLimiter(c, perUser, perIP)
	tests := []struct {
		name   string
		burst  int
		keys   []string // what the refund gives back to
		allow  func() session.RateDecision
		refund func()
	}{
		{"Login", perUser.Rate, []string{"rate:rl:ip:10.8.0.1", "rate:rl:user:refunded"},
			func() session.RateDecision { return login(t, l, "10.8.0.1", "Refunded") },
			func() { l.RefundLogin(ctx, "10.8.0.1", "refunded") }},
		{"Register", perIP.Rate, []string{"rate:rl:ip:10.8.0.2"}, func() session.RateDecision {
			d, err := l.AllowRegister(ctx, "10.8.0.2")
			if err != nil {
				t.Fatal(err)
			}
			return d
		}, func() { l.RefundRegister(ctx, "10.8.0.2") }},
		{"Sessions", perSessions.Burst, []string{"rate:rl:sessions:{uid-refunded}"},
			func() session.RateDecision { return sessions(t, l, "uid-refunded") },
			func() { l.RefundSessions(ctx, "uid-refunded") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i := range tc.burst {
				if d := tc.allow(); !d.Allowed {
					t.Fatalf("attempt %d: got %+v, want allowed", i+1, d)
				}
			}
			// Two refunds, one attempt each: the limits are a whole
			// hour from recovering, so nothing else gives one back.
			for range 2 {
				before := srv.Strings(t, tc.keys)
				tc.refund()
				poll.For(t, 5*time.Second, "the refund to run", func() bool {
					after := srv.Strings(t, tc.keys)
					for _, k := range tc.keys {
						if after[k] == before[k] {
							return false
						}
					}
					return true
				})
				if d := tc.allow(); !d.Allowed {
					t.Fatalf("after a refund: got %+v, want allowed", d)
				}
			}
			if d := tc.allow(); d.Allowed {
				t.Errorf("after the refunds were spent: got %+v, want refused", d)
			}
		})
	}
	t.Run("ClientHungUp", func(t *testing.T) {
		// A request whose client hung up failed because of it, not
		// because of the store: its attempt stays counted, or hanging
		// up would make every hashed attempt free.
		login(t, l, "10.8.0.5", "hungup")
		before := srv.Strings(t, []string{"rate:rl:ip:10.8.0.5", "rate:rl:user:hungup"})
		gone, cancel := context.WithCancel(ctx)
		cancel()
		l.RefundLogin(gone, "10.8.0.5", "hungup")
		// A refund that is made, sent after the one that must not be.
		login(t, l, "10.8.0.6", "")
		counted := srv.Strings(t, []string{"rate:rl:ip:10.8.0.6"})
		l.RefundRegister(ctx, "10.8.0.6")
		poll.For(t, 5*time.Second, "the later refund to run", func() bool {
			return srv.Strings(t, []string{"rate:rl:ip:10.8.0.6"})["rate:rl:ip:10.8.0.6"] != counted["rate:rl:ip:10.8.0.6"]
		})
		wantUnchanged(t, before, srv.Strings(t, []string{"rate:rl:ip:10.8.0.5", "rate:rl:user:hungup"}))
	})
	t.Run("CutByShutdown", func(t *testing.T) {
		// A request that the replica's shutdown cut off is the
		// replica's failure: what it counted is given back.
		login(t, l, "10.8.0.7", "")
		counted := srv.Strings(t, []string{"rate:rl:ip:10.8.0.7"})
		cut, cancel := context.WithCancelCause(ctx)
		cancel(session.ErrShutdownCut)
		l.RefundRegister(cut, "10.8.0.7")
		poll.For(t, 5*time.Second, "the refund of a request cut off", func() bool {
			return srv.Strings(t, []string{"rate:rl:ip:10.8.0.7"})["rate:rl:ip:10.8.0.7"] != counted["rate:rl:ip:10.8.0.7"]
		})
	})
	t.Run("NothingCounted", func(t *testing.T) {
		srv.ResetStats(t)
		l.RefundLogin(ctx, "10.8.0.9", "never")
		l.RefundSessions(ctx, "uid-never")
		poll.For(t, 5*time.Second, "the refunds to run", func() bool { st := srv.CommandStats(t); return st["evalsha"]+st["eval"] >= 3 })
		for _, pattern := range []string{"*never*", "*10.8.0.9*"} {
			if keys, err := c.Keys(ctx, pattern).Result(); err != nil || len(keys) != 0 {
				t.Errorf("keys %s: got %q, %v, want none", pattern, keys, err)
			}
		}
	})
}

func TestKeysExpire(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	l := newLimiter(c, perUser, perIP)
	ctx := context.Background()

	login(t, l, "10.2.0.1", "Expiring")
	if _, err := l.AllowRegister(ctx, "2001:db8::1"); err != nil {
		t.Fatal(err)
	}
	sessions(t, l, "uid-expiring")

	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"rate:rl:ip:10.2.0.1":             true,
		"rate:rl:user:expiring":           true,
		"rate:rl:ip:2001:db8::/64":        true,
		"rate:rl:sessions:{uid-expiring}": true,
	}
	if len(keys) != len(want) {
		t.Errorf("got keys %v, want %d keys", keys, len(want))
	}
	for _, k := range keys {
		if !want[k] {
			t.Errorf("got key %q, want one of %v", k, want)
		}
		ttl, err := c.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		// A fresh limit recovers within one emission interval (12m to
		// 30m here).
		if ttl <= 0 || ttl > time.Hour {
			t.Errorf("%s: got PTTL %v, want in (0, 1h]", k, ttl)
		}
	}
}

func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	l := newLimiter(srv.Client(t), perUser, perIP)
	drain(t, l, "10.3.0.1", "down", 1)
	capped := newCapLimiter(srv.Client(t), perSessions)

	srv.Stop()

	// The caller bounds each call, as the service does with REDIS_TIMEOUT;
	// without a bound the client would go on retrying for seconds.
	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{name: "AllowLogin", call: func(ctx context.Context) error {
			_, err := l.AllowLogin(ctx, "10.3.0.1", "down")
			return err
		}},
		{name: "AllowLoginWithoutUser", call: func(ctx context.Context) error {
			_, err := l.AllowLogin(ctx, "10.3.0.1", "")
			return err
		}},
		{name: "AllowRegister", call: func(ctx context.Context) error {
			_, err := l.AllowRegister(ctx, "10.3.0.1")
			return err
		}},
		{name: "AllowSessions", call: func(ctx context.Context) error {
			_, err := l.AllowSessions(ctx, "uid-down")
			return err
		}},
		{name: "ChargeListing", call: func(ctx context.Context) error {
			return l.ChargeListing(ctx, "uid-down", 100)
		}},
		{name: "ChargeListingGivesBack", call: func(ctx context.Context) error {
			return capped.ChargeListing(ctx, "uid-down", 1)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if err := tc.call(ctx); !errors.Is(err, session.ErrUnavailable) {
				t.Errorf("got %v, want %v", err, session.ErrUnavailable)
			}
		})
	}
}

func TestInvalidLimit(t *testing.T) {
	srv := redistest.Start(t)
	l := newLimiter(srv.Client(t), session.Limit{}, perIP)
	_, err := l.AllowLogin(context.Background(), "10.4.0.1", "zero")
	if err == nil {
		t.Fatal("got nil error, want one for a zero limit")
	}
	if errors.Is(err, session.ErrUnavailable) {
		t.Errorf("got %v, want an error that is not ErrUnavailable", err)
	}

	// A Limiter without a sessions limit refuses loudly too.
	l = ratelimit.New(srv.Client(t), ratelimit.Limits{LoginPerUser: perUser, LoginPerIP: perIP})
	_, err = l.AllowSessions(context.Background(), "uid-zero")
	if err == nil || errors.Is(err, session.ErrUnavailable) {
		t.Errorf("got %v, want an error that is not ErrUnavailable", err)
	}
}

// TestSessionsLimitOnCluster: the listing limit's key hashes to the slot
// of the user's sessions, so that on a Redis Cluster a listing needs no
// other shard, and a refund of it, whose script takes the key and a
// marker, runs (keys of two slots would be refused with CROSSSLOT).
func TestSessionsLimitOnCluster(t *testing.T) {
	srv := redistest.StartCluster(t)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr()}})
	t.Cleanup(func() { _ = c.Close() })
	l := newLimiter(c, perUser, perIP)
	ctx := context.Background()
	const uid = "7oZwzX9XX8M"

	slot := func(key string) int64 {
		n, err := c.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT %s: %v", key, err)
		}
		return n
	}
	if got, want := slot("rate:rl:sessions:{"+uid+"}"), slot("s:{"+uid+"}:x"); got != want {
		t.Fatalf("listing limit key in slot %d, the user's sessions in %d", got, want)
	}

	for range perSessions.Burst {
		d, err := l.AllowSessions(ctx, uid)
		if err != nil || !d.Allowed {
			t.Fatalf("AllowSessions: %+v, %v; want allowed", d, err)
		}
	}
	if d, err := l.AllowSessions(ctx, uid); err != nil || d.Allowed {
		t.Fatalf("AllowSessions with the burst spent: %+v, %v; want refused", d, err)
	}
	l.RefundSessions(ctx, uid)
	poll.For(t, 5*time.Second, "the refund to give a listing back", func() bool {
		d, err := l.AllowSessions(ctx, uid)
		return err == nil && d.Allowed
	})
}
