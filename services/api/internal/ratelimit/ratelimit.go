// Package ratelimit limits login and register attempts per client IP and per
// username, and the listings of sessions per user. The state lives in
// Redis, so every replica counts against the same limits: GCRA, in a Lua
// script ported from redis_rate (see gcra.go) so that it carries a
// deadline, like every script of the service that writes.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/scriptdeadline"
	"redis-session-app/services/api/internal/session"
)

// Key prefixes. Each key is "rate:" and one of these, as redis_rate named
// them, so the counts of a version that used redis_rate carry over:
// "rate:rl:ip:<ip>", "rate:rl:user:<canonical username>" and
// "rate:rl:sessions:{<user id>}". Each expires once its limit has fully
// recovered.
//
// The listing limit's key carries the user id as a Redis Cluster hash
// tag, as the user's sessions do (redis_rate's "rate:rl:sessions:<user
// id>" did not), so that on a cluster a listing needs only the shard that
// holds the user's sessions, not some other one as well.
const (
	keyPrefix   = "rate:"
	keyIP       = "rl:ip:"
	keyUser     = "rl:user:"
	keySessions = "rl:sessions:"
)

// sessionsKey is the listing limit's key of userID, without keyPrefix.
func sessionsKey(userID string) string { return keySessions + "{" + userID + "}" }

// Limits are the limits a Limiter enforces. Each must have a positive rate
// and period, as session.ParseLimit makes them, and allows the burst
// session.Limit.BurstOf names.
type Limits struct {
	// LoginPerUser counts login attempts per username.
	LoginPerUser session.Limit
	// LoginPerIP counts login and register attempts per client IP.
	LoginPerIP session.Limit
	// SessionsPerUser counts the listings of one user's sessions, in
	// units of listing work (see SessionsPerListingUnit).
	SessionsPerUser session.Limit
	// MaxListed is the most sessions a listing can return, the store's
	// cap (SESSION_MAX_PER_USER); DefaultMaxListed when zero. A listing
	// reserves what a listing of MaxListed costs (see AllowSessions).
	MaxListed int
}

// DefaultMaxListed is MaxListed when Limits leaves it zero: the default
// of SESSION_MAX_PER_USER.
const DefaultMaxListed = 100

// Limiter enforces Limits. It implements httpapi.RateLimiter and is safe
// for concurrent use.
type Limiter struct {
	c               redis.UniversalClient
	timeout         time.Duration // of c's calls, for the scripts' deadline
	perUser         session.Limit
	perIP           session.Limit
	sessionsPerUser session.Limit
	reserve         int // units a listing reserves: the cost of MaxListed sessions
}

// New returns a Limiter enforcing l, keeping its counts in c.
func New(c redis.UniversalClient, l Limits) *Limiter {
	maxListed := l.MaxListed
	if maxListed <= 0 {
		maxListed = DefaultMaxListed
	}
	return &Limiter{
		reserve:         listingCost(maxListed),
		c:               c,
		timeout:         scriptdeadline.ClientTimeout(c),
		perUser:         l.LoginPerUser,
		perIP:           l.LoginPerIP,
		sessionsPerUser: l.SessionsPerUser,
	}
}

// AllowLogin counts one attempt against the IP's limit and, when username is
// not empty, against the username's limit, without regard to case.
//
// Both limits are checked on every attempt, even when the first one already
// refuses: the contract counts every attempt against both, so that an
// attacker spreading guesses over many IPs still drains the username's
// limit. As GCRA goes, an attempt a limit refuses does not use up that
// limit, but it does use up the other one if that one allows it. When
// either refuses, the attempt is refused and the decision names the limit
// that makes the client wait longer, with that wait.
//
// Errors wrap session.ErrUnavailable: the caller fails closed.
func (l *Limiter) AllowLogin(ctx context.Context, ip, username string) (session.RateDecision, error) {
	d, err := l.allow(ctx, session.LimitIP, keyIP+ipKey(ip), l.perIP, 1)
	if err != nil || username == "" {
		return d, err
	}
	du, err := l.allow(ctx, session.LimitUser, keyUser+session.CanonicalUsername(username), l.perUser, 1)
	if err != nil {
		// The caller answers 503, which changes nothing: the IP's
		// token goes back (its key may live on a node that answers
		// while the user's does not).
		if d.Allowed {
			l.refund(ctx, keyIP+ipKey(ip), l.perIP, 1)
		}
		return session.RateDecision{}, err
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

// RefundLogin gives back what AllowLogin counted for an attempt it
// allowed and that was then answered 503 because the store was
// unavailable: such an answer changes nothing, limits included, so that a
// client retrying through an outage is not refused afterwards for
// attempts that never happened. It returns at once: the refund is sent
// in the background, retried while Redis does not answer, so that the 503
// is not delayed by it. A request whose client hung up (ctx ended) gets
// no refund: the hang-up, not the store, failed it.
func (l *Limiter) RefundLogin(ctx context.Context, ip, username string) {
	l.refund(ctx, keyIP+ipKey(ip), l.perIP, 1)
	if username != "" {
		l.refund(ctx, keyUser+session.CanonicalUsername(username), l.perUser, 1)
	}
}

// RefundRegister gives back what AllowRegister counted, as RefundLogin.
func (l *Limiter) RefundRegister(ctx context.Context, ip string) {
	l.refund(ctx, keyIP+ipKey(ip), l.perIP, 1)
}

// RefundSessions gives back the reservation AllowSessions counted for a
// listing answered 503, as RefundLogin. A listing whose client hung up
// keeps its whole reservation: its reads may have been made.
func (l *Limiter) RefundSessions(ctx context.Context, userID string) {
	l.refund(ctx, sessionsKey(userID), l.sessionsPerUser, l.reserve)
}

// refundPatience bounds how long a refund is retried, and refundRetry is
// the pause between tries: a Redis that stalled for a few seconds still
// gets the refund when it answers again.
const (
	refundPatience = 10 * time.Second
	refundRetry    = 100 * time.Millisecond
)

// refund gives back cost events of lim under key, in the background,
// unless the client hung up (ctx canceled): it caused the store's failure
// itself, and its attempt stays counted (else hanging up would make
// every hashed attempt free). Each try carries a deadline, so a try Redis
// runs late does nothing and the next one counts, and all tries share one
// marker, so a try made whose answer was lost is not made again: the
// events are given back once. Tries stop at the first answer, or after
// refundPatience; then the events stay counted and the limit recovers by
// itself.
func (l *Limiter) refund(ctx context.Context, key string, lim session.Limit, cost int) {
	// Canceled only: a request whose store budget ran out (a deadline)
	// was answered 503 and gets its refund, and so does one that the
	// replica's shutdown cut off.
	if errors.Is(ctx.Err(), context.Canceled) && !session.CutByShutdown(ctx) {
		return
	}
	// The request's context ends with its answer; the refund has a
	// bound of its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refundPatience)
	marker, err := refundMarker(keyPrefix + key)
	if err != nil {
		cancel()
		return
	}
	go func() {
		defer cancel()
		for {
			err := refundN(ctx, l.c, l.timeout, keyPrefix+key, lim, cost, marker)
			if err == nil || ctx.Err() != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(refundRetry):
			}
		}
	}()
}

// AllowRegister counts one attempt against the IP's limit.
//
// Errors wrap session.ErrUnavailable: the caller fails closed.
func (l *Limiter) AllowRegister(ctx context.Context, ip string) (session.RateDecision, error) {
	return l.allow(ctx, session.LimitIP, keyIP+ipKey(ip), l.perIP, 1)
}

// AllowSessions admits a request of the user userID (the id of an
// authenticated session, never a name the client chose) to list its
// sessions when its budget has a unit left, and reserves what the largest
// listing costs (a listing of Limits.MaxListed sessions), even past what
// is left; ChargeListing settles the reservation once the listing's
// size is known. The cost is not known before the listing, and reserving
// less would let listings sent at once all be admitted before any of
// them paid: each admitted listing holds its largest cost from the
// moment it is admitted, so a full budget admits at most budget/cost
// listings at the cap (the last may run into debt), however many come at
// once.
//
// Errors wrap session.ErrUnavailable: the caller fails closed.
func (l *Limiter) AllowSessions(ctx context.Context, userID string) (session.RateDecision, error) {
	return l.allow(ctx, session.LimitSessions, sessionsKey(userID), l.sessionsPerUser, l.reserve)
}

// SessionsPerListingUnit is how many listed sessions one unit of
// SESSIONS_LIMIT_PER_USER pays for. A listing's cost grows with the
// sessions it returns (a replica spends most of it encoding them): at the
// default cap of 100 one listing costs 10 units, so an account holding
// the cap gets a tenth of the listings of an account with a few sessions,
// and no account can spend more of the replicas' time on listings than
// the budget allows.
const SessionsPerListingUnit = 10

// listingCost is what a listing of listed sessions costs: one unit per
// SessionsPerListingUnit sessions, rounded up, at least one.
func listingCost(listed int) int {
	return max(1, (listed+SessionsPerListingUnit-1)/SessionsPerListingUnit)
}

// ChargeListing settles the reservation AllowSessions made for a listing
// that returned listed sessions: it gives back what the listing did not
// use, in one round trip before the answer, so that the user's next
// listing can spend it. A listing at the cap (91 to 100 sessions at the
// default) used all of it and asks nothing of Redis. A listing costing
// more than the reservation (MaxListed below the store's cap) pays the
// rest whatever the budget has left.
//
// Errors wrap session.ErrUnavailable; the listing has been served by then,
// so the caller may go on, and the user has paid for the largest listing.
func (l *Limiter) ChargeListing(ctx context.Context, userID string, listed int) error {
	// The listing is done: a client hanging up now must not change
	// what it pays.
	ctx = context.WithoutCancel(ctx)
	key := keyPrefix + sessionsKey(userID)
	var err error
	switch rest := listingCost(listed) - l.reserve; {
	case rest < 0:
		err = refundN(ctx, l.c, l.timeout, key, l.sessionsPerUser, -rest, "")
	case rest > 0:
		err = spend(ctx, l.c, l.timeout, key, l.sessionsPerUser, rest)
	}
	if err != nil {
		return scriptdeadline.Unavailable("ratelimit: settling a listing", err)
	}
	return nil
}

// allow counts cost events against lim under key when it has one left.
func (l *Limiter) allow(ctx context.Context, name, key string, lim session.Limit, cost int) (session.RateDecision, error) {
	if lim.Rate < 1 || lim.BurstOf() < 1 || lim.Period <= 0 {
		// The script would divide by zero; refuse loudly instead.
		return session.RateDecision{}, fmt.Errorf("ratelimit: invalid %s limit %+v", name, lim)
	}
	res, err := gcra(ctx, l.c, l.timeout, keyPrefix+key, lim, cost, 1)
	if err != nil {
		return session.RateDecision{}, scriptdeadline.Unavailable("ratelimit: checking "+name+" limit", err)
	}
	if res.Allowed > 0 {
		return session.RateDecision{Allowed: true}, nil
	}
	return session.RateDecision{Allowed: false, RetryAfter: res.RetryAfter, Limit: name}, nil
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
