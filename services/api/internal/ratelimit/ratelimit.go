// Package ratelimit limits login and register attempts per client IP and per
// username. The state lives in Redis (GCRA through redis_rate), so every
// replica counts against the same limits.
package ratelimit

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/httpapi"
	"redis-session-app/services/api/internal/session"
)

// Names of the limits, as reported in httpapi.Decision.Limit and used as
// metric labels.
const (
	LimitIP   = "ip"
	LimitUser = "user"
)

// Key prefixes. redis_rate puts its own "rate:" in front, so the keys in
// Redis are "rate:rl:ip:<ip>" and "rate:rl:user:<canonical username>". Each
// expires once its limit has fully recovered.
const (
	keyIP   = "rl:ip:"
	keyUser = "rl:user:"
)

// ParseLimit parses "N/s", "N/m" or "N/h" with N a positive integer into a
// limit of N per period with a burst of N.
func ParseLimit(s string) (redis_rate.Limit, error) {
	n, unit, ok := strings.Cut(s, "/")
	if !ok || n == "" || strings.Trim(n, "0123456789") != "" {
		return redis_rate.Limit{}, limitError(s)
	}
	rate, err := strconv.Atoi(n)
	if err != nil || rate < 1 {
		return redis_rate.Limit{}, limitError(s)
	}
	switch unit {
	case "s":
		return redis_rate.PerSecond(rate), nil
	case "m":
		return redis_rate.PerMinute(rate), nil
	case "h":
		return redis_rate.PerHour(rate), nil
	}
	return redis_rate.Limit{}, limitError(s)
}

func limitError(s string) error {
	return fmt.Errorf("%q is not a limit of the form N/s, N/m or N/h with N a positive integer", s)
}

// FormatLimit writes l in the form ParseLimit reads, or in redis_rate's own
// form when its period is not a second, minute or hour.
func FormatLimit(l redis_rate.Limit) string {
	switch l.Period {
	case time.Second:
		return strconv.Itoa(l.Rate) + "/s"
	case time.Minute:
		return strconv.Itoa(l.Rate) + "/m"
	case time.Hour:
		return strconv.Itoa(l.Rate) + "/h"
	}
	return l.String()
}

// Limiter limits attempts per client IP and per username. It implements
// httpapi.LoginLimiter and is safe for concurrent use.
type Limiter struct {
	rl      *redis_rate.Limiter
	perUser redis_rate.Limit
	perIP   redis_rate.Limit
}

// New returns a Limiter keeping its counts in c. Both limits must have a
// positive rate, burst and period, as ParseLimit makes them.
func New(c redis.UniversalClient, perUser, perIP redis_rate.Limit) *Limiter {
	return &Limiter{rl: redis_rate.NewLimiter(c), perUser: perUser, perIP: perIP}
}

// AllowLogin counts one attempt against the IP's limit and, when username is
// not empty, against the username's limit, without regard to case.
//
// Both limits are checked on every attempt, even when the first one already
// refuses: the contract counts every attempt against both, so that an
// attacker spreading guesses over many IPs still drains the username's
// limit. As GCRA goes, an attempt a limit refuses does not use up that
// limit, but it does use up the other one if that one allows it. When
// either refuses, the attempt is refused and the Decision names the limit
// that makes the client wait longer, with that wait.
//
// Errors wrap session.ErrUnavailable: the caller fails closed.
func (l *Limiter) AllowLogin(ctx context.Context, ip, username string) (httpapi.Decision, error) {
	d, err := l.allow(ctx, LimitIP, keyIP+ipKey(ip), l.perIP)
	if err != nil || username == "" {
		return d, err
	}
	du, err := l.allow(ctx, LimitUser, keyUser+session.CanonicalUsername(username), l.perUser)
	if err != nil {
		return httpapi.Decision{}, err
	}
	switch {
	case d.Allowed:
		return du, nil
	case du.Allowed:
		return d, nil
	case du.RetryAfter > d.RetryAfter:
		return du, nil
	}
	return d, nil
}

// AllowRegister counts one attempt against the IP's limit.
//
// Errors wrap session.ErrUnavailable: the caller fails closed.
func (l *Limiter) AllowRegister(ctx context.Context, ip string) (httpapi.Decision, error) {
	return l.allow(ctx, LimitIP, keyIP+ipKey(ip), l.perIP)
}

func (l *Limiter) allow(ctx context.Context, name, key string, limit redis_rate.Limit) (httpapi.Decision, error) {
	if limit.Rate < 1 || limit.Burst < 1 || limit.Period <= 0 {
		// The script would divide by zero; refuse loudly instead.
		return httpapi.Decision{}, fmt.Errorf("ratelimit: invalid %s limit %v", name, limit)
	}
	res, err := l.rl.Allow(ctx, key, limit)
	if err != nil {
		return httpapi.Decision{}, fmt.Errorf("ratelimit: checking %s limit: %w: %w", name, session.ErrUnavailable, err)
	}
	if res.Allowed > 0 {
		return httpapi.Decision{Allowed: true}, nil
	}
	return httpapi.Decision{Allowed: false, RetryAfter: res.RetryAfter, Limit: name}, nil
}

// ipKey is the part of the key naming a client address. An IPv6 client is
// limited by its /64, the smallest block a subscriber is normally given:
// per address, one client would get 2^64 separate limits. IPv4 and
// IPv4-mapped addresses are limited one by one. A string that is not an
// address is used as it is.
func ipKey(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String()
	}
	return netip.PrefixFrom(addr, 64).Masked().String()
}
