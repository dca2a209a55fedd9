package ratelimit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"

	"redis-session-app/services/api/internal/httpapi"
	"redis-session-app/services/api/internal/ratelimit"
	"redis-session-app/services/api/internal/redistest"
	"redis-session-app/services/api/internal/session"
)

var _ httpapi.LoginLimiter = (*ratelimit.Limiter)(nil)

// Per hour, so that nothing recovers while a test runs.
var (
	perUser = redis_rate.PerHour(3)
	perIP   = redis_rate.PerHour(5)
)

func login(t *testing.T, l *ratelimit.Limiter, ip, username string) httpapi.Decision {
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

func wantRefused(t *testing.T, d httpapi.Decision, limit string) {
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
		l := ratelimit.New(srv.Client(t), perUser, perIP)
		drain(t, l, "10.0.0.1", "burst", perUser.Burst)
		d := login(t, l, "10.0.0.1", "burst")
		wantRefused(t, d, ratelimit.LimitUser)
		// One of three per hour: the next one is some 20 minutes away.
		if d.RetryAfter < 19*time.Minute || d.RetryAfter > 20*time.Minute {
			t.Errorf("got RetryAfter %v, want about 20m", d.RetryAfter)
		}
	})

	t.Run("IPBurstThenRefused", func(t *testing.T) {
		l := ratelimit.New(srv.Client(t), perUser, perIP)
		for i := range perIP.Burst {
			// A new username each time: only the IP limit fills up.
			if d := login(t, l, "10.0.0.2", "ipuser"+string(rune('a'+i))); !d.Allowed {
				t.Fatalf("attempt %d: got %+v, want allowed", i+1, d)
			}
		}
		wantRefused(t, login(t, l, "10.0.0.2", "ipuser-fresh"), ratelimit.LimitIP)
		wantRefused(t, login(t, l, "10.0.0.2", ""), ratelimit.LimitIP)
	})

	t.Run("UsernamesIgnoreCase", func(t *testing.T) {
		l := ratelimit.New(srv.Client(t), perUser, perIP)
		for i, name := range []string{"Alice", "alice", "ALICE"} {
			// Different IPs, so that only the user limit is shared.
			if d := login(t, l, "10.0.1."+string(rune('1'+i)), name); !d.Allowed {
				t.Fatalf("%s: got %+v, want allowed", name, d)
			}
		}
		wantRefused(t, login(t, l, "10.0.1.9", "aLiCe"), ratelimit.LimitUser)
	})

	t.Run("ReplicasShareCounts", func(t *testing.T) {
		// Two limiters, two connections: two replicas on one Redis.
		a := ratelimit.New(srv.Client(t), perUser, perIP)
		b := ratelimit.New(srv.Client(t), perUser, perIP)
		drain(t, a, "10.0.2.1", "shared", 2)
		drain(t, b, "10.0.2.2", "shared", 1)
		wantRefused(t, login(t, a, "10.0.2.3", "shared"), ratelimit.LimitUser)
		wantRefused(t, login(t, b, "10.0.2.4", "shared"), ratelimit.LimitUser)
	})

	t.Run("LimitsIndependent", func(t *testing.T) {
		l := ratelimit.New(srv.Client(t), perUser, perIP)
		drain(t, l, "10.0.3.1", "indep", perUser.Burst)
		wantRefused(t, login(t, l, "10.0.3.1", "indep"), ratelimit.LimitUser)
		// The same IP may still try other users, and the user is refused
		// from anywhere.
		if d := login(t, l, "10.0.3.1", "indep-other"); !d.Allowed {
			t.Errorf("other user from same IP: got %+v, want allowed", d)
		}
		wantRefused(t, login(t, l, "10.0.3.2", "indep"), ratelimit.LimitUser)
	})

	t.Run("RefusedByIPStillCountsForUser", func(t *testing.T) {
		l := ratelimit.New(srv.Client(t), perUser, perIP)
		for i := range perIP.Burst {
			drain(t, l, "10.0.4.1", "filler"+string(rune('a'+i)), 1)
		}
		// Refused by the IP limit, yet each attempt uses up the user's.
		for range perUser.Burst {
			wantRefused(t, login(t, l, "10.0.4.1", "victim"), ratelimit.LimitIP)
		}
		wantRefused(t, login(t, l, "10.0.4.2", "victim"), ratelimit.LimitUser)
	})

	t.Run("BothRefuseNamesLongerWait", func(t *testing.T) {
		// The user limit recovers far more slowly than the IP limit.
		l := ratelimit.New(srv.Client(t), redis_rate.PerHour(1), redis_rate.PerSecond(1))
		drain(t, l, "10.0.5.1", "both", 1)
		d := login(t, l, "10.0.5.1", "both")
		wantRefused(t, d, ratelimit.LimitUser)
		if d.RetryAfter < 59*time.Minute {
			t.Errorf("got RetryAfter %v, want about 1h", d.RetryAfter)
		}

		// And the other way round.
		l = ratelimit.New(srv.Client(t), redis_rate.PerSecond(1), redis_rate.PerHour(1))
		drain(t, l, "10.0.5.2", "both2", 1)
		wantRefused(t, login(t, l, "10.0.5.2", "both2"), ratelimit.LimitIP)
	})

	t.Run("IPv6By64", func(t *testing.T) {
		l := ratelimit.New(srv.Client(t), perUser, redis_rate.PerHour(2))
		drain(t, l, "2001:db8:1:2::1", "", 1)
		drain(t, l, "2001:db8:1:2:ffff::9", "", 1)
		wantRefused(t, login(t, l, "2001:db8:1:2::abcd", ""), ratelimit.LimitIP)
		drain(t, l, "2001:db8:1:3::1", "", 1)
	})

	t.Run("IPv4MappedIsIPv4", func(t *testing.T) {
		l := ratelimit.New(srv.Client(t), perUser, redis_rate.PerHour(1))
		drain(t, l, "10.0.6.1", "", 1)
		wantRefused(t, login(t, l, "::ffff:10.0.6.1", ""), ratelimit.LimitIP)
	})
}

func TestAllowRegister(t *testing.T) {
	srv := redistest.Start(t)
	l := ratelimit.New(srv.Client(t), perUser, perIP)
	ctx := context.Background()

	for i := range perIP.Burst - 1 {
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
	wantRefused(t, d, ratelimit.LimitIP)

	if d, err := l.AllowRegister(ctx, "10.1.0.2"); err != nil || !d.Allowed {
		t.Errorf("other IP: got %+v, %v, want allowed", d, err)
	}
}

func TestKeysExpire(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	l := ratelimit.New(c, perUser, perIP)
	ctx := context.Background()

	login(t, l, "10.2.0.1", "Expiring")
	if _, err := l.AllowRegister(ctx, "2001:db8::1"); err != nil {
		t.Fatal(err)
	}

	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"rate:rl:ip:10.2.0.1":      true,
		"rate:rl:user:expiring":    true,
		"rate:rl:ip:2001:db8::/64": true,
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
		// A fresh limit recovers within one emission interval (12m here).
		if ttl <= 0 || ttl > time.Hour {
			t.Errorf("%s: got PTTL %v, want in (0, 1h]", k, ttl)
		}
	}
}

func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	l := ratelimit.New(srv.Client(t), perUser, perIP)
	drain(t, l, "10.3.0.1", "down", 1)

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
	l := ratelimit.New(srv.Client(t), redis_rate.Limit{}, perIP)
	_, err := l.AllowLogin(context.Background(), "10.4.0.1", "zero")
	if err == nil {
		t.Fatal("got nil error, want one for a zero limit")
	}
	if errors.Is(err, session.ErrUnavailable) {
		t.Errorf("got %v, want an error that is not ErrUnavailable", err)
	}
}

func TestParseLimit(t *testing.T) {
	tests := []struct {
		in      string
		want    redis_rate.Limit
		wantErr bool
	}{
		{in: "10/m", want: redis_rate.Limit{Rate: 10, Burst: 10, Period: time.Minute}},
		{in: "30/s", want: redis_rate.Limit{Rate: 30, Burst: 30, Period: time.Second}},
		{in: "5/h", want: redis_rate.Limit{Rate: 5, Burst: 5, Period: time.Hour}},
		{in: "1/s", want: redis_rate.Limit{Rate: 1, Burst: 1, Period: time.Second}},
		{in: "007/m", want: redis_rate.Limit{Rate: 7, Burst: 7, Period: time.Minute}},
		{in: "", wantErr: true},
		{in: "10", wantErr: true},
		{in: "/m", wantErr: true},
		{in: "10/", wantErr: true},
		{in: "0/m", wantErr: true},
		{in: "-1/m", wantErr: true},
		{in: "+1/m", wantErr: true},
		{in: "1.5/m", wantErr: true},
		{in: " 10/m", wantErr: true},
		{in: "10/m ", wantErr: true},
		{in: "10/M", wantErr: true},
		{in: "10/min", wantErr: true},
		{in: "10/d", wantErr: true},
		{in: "10/m/s", wantErr: true},
		{in: "99999999999999999999/s", wantErr: true},
		{in: "１０/m", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ratelimit.ParseLimit(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				for _, s := range []string{"N/s", "N/m", "N/h"} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("got error %q, want it to name the format %s", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if back := ratelimit.FormatLimit(got); strings.TrimLeft(tc.in, "0") != back {
				t.Errorf("FormatLimit: got %q, want %q", back, strings.TrimLeft(tc.in, "0"))
			}
		})
	}
}

func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"10/m", "30/s", "5/h", "", "0/m", "-1/s", "1/", "/", "9223372036854775807/h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ratelimit.ParseLimit(s)
		if err != nil {
			return
		}
		if l.Rate < 1 || l.Burst != l.Rate {
			t.Errorf("ParseLimit(%q): got %+v, want Rate >= 1 and Burst == Rate", s, l)
		}
		switch l.Period {
		case time.Second, time.Minute, time.Hour:
		default:
			t.Errorf("ParseLimit(%q): got period %v, want s, m or h", s, l.Period)
		}
	})
}
