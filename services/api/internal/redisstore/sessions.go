package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/scriptdeadline"
	"redis-session-app/services/api/internal/session"
)

// Shapes of ids and tokens. A user id is 8 random bytes (11 characters). A
// token is the owner's user id, the session's public id (16 random bytes,
// 22 characters) and a secret (32 random bytes, 43 characters): the store
// finds the session's key from the token alone, in the user's hash slot,
// and checks the secret against the session's verifier. Anything of
// another shape is no token of this version.
const (
	userIDBytes  = 8
	userIDLen    = 11
	tokenBytes   = 32
	secretLen    = 43
	publicIDSize = 16
	publicIDLen  = 22
	tokenLen     = userIDLen + publicIDLen + secretLen
)

// Defaults of SessionOptions, so that a zero SessionOptions works. The
// service always sets them from its configuration, whose defaults package
// config owns.
const (
	defaultIdleTimeout = time.Hour
	defaultMaxLifetime = 24 * time.Hour
	defaultMaxPerUser  = 100
)

// maxPerUserLimit bounds the cap on sessions per user, and so the work of
// every call on a user's sessions: no call looks at more index members.
const maxPerUserLimit = 1000

// SessionOptions sets the lifetimes of sessions.
type SessionOptions struct {
	// IdleTimeout is how long a session lives unused; 1 h when zero.
	IdleTimeout time.Duration
	// MaxLifetime is how long a session lives at most after login; 24 h
	// when zero.
	MaxLifetime time.Duration
	// MaxPerUser caps the live sessions of a user: 100 when zero, and
	// taken as 1 to 1000 (maxPerUserLimit) otherwise.
	MaxPerUser int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Sessions keeps sessions in Redis. It implements session.Store.
//
// Keys, all of one user in the hash slot of {userID}:
//
//	s:{userID}:<public id>  STRING, the session record (record.go); expires at
//	                        the idle or absolute end
//	i:{userID}              ZSET of the public ids (the members), score
//	                        createdAt ms; expires with the last absolute end
//	ua:{userID}             HASH, UA reference -> User-Agent of the user's
//	                        sessions; expires with the index
//
// The index holds at most MaxPerUser members once a login has trimmed it;
// members of sessions that ended by expiry stay until a login or a listing
// drops them. The UA table holds at most MaxPerUser + 1 entries. Every
// call's work is bounded by the cap (see scripts.go).
type Sessions struct {
	c          redis.UniversalClient
	timeout    time.Duration // of c's calls, for script deadlines
	idle       time.Duration
	maxLife    time.Duration
	maxPerUser int
	now        func() time.Time
}

var _ session.Store = (*Sessions)(nil)

// NewSessions returns a session store on c.
func NewSessions(c redis.UniversalClient, o SessionOptions) *Sessions {
	s := &Sessions{c: c, timeout: scriptdeadline.ClientTimeout(c), idle: o.IdleTimeout, maxLife: o.MaxLifetime, maxPerUser: o.MaxPerUser, now: o.Now}
	if s.maxPerUser == 0 {
		s.maxPerUser = defaultMaxPerUser
	}
	s.maxPerUser = min(max(s.maxPerUser, 1), maxPerUserLimit)
	if s.idle <= 0 {
		s.idle = defaultIdleTimeout
	}
	if s.maxLife <= 0 {
		s.maxLife = defaultMaxLifetime
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Create opens a session for ns.UserID, which must be an id this package's
// Users made.
func (s *Sessions) Create(ctx context.Context, ns session.NewSession) (session.Issued, int, error) {
	// All are programming errors, not outages, and must not look like one.
	if !validUserID(ns.UserID) {
		return session.Issued{}, 0, errors.New("creating session: malformed user id")
	}
	if ns.Username == "" || len(ns.Username) > maxRecordUsername {
		return session.Issued{}, 0, errors.New("creating session: empty or overlong username")
	}
	secret, err := session.RandomString(tokenBytes)
	if err != nil {
		return session.Issued{}, 0, fmt.Errorf("creating session: %w", err)
	}
	id, err := session.RandomString(publicIDSize)
	if err != nil {
		return session.Issued{}, 0, fmt.Errorf("creating session: %w", err)
	}
	token := ns.UserID + id + secret
	k, _ := keysOf(token)

	now := s.now()
	ct := now.UnixMilli()
	abs := ct + s.maxLife.Milliseconds()
	exp := min(ct+s.idle.Milliseconds(), abs)
	if ct <= 0 || abs > maxRecordTime {
		return session.Issued{}, 0, fmt.Errorf("creating session: clock at %v is out of range", now)
	}
	sess := session.Session{
		ID:                id,
		UserID:            ns.UserID,
		Username:          ns.Username,
		CreatedAt:         msTime(ct),
		LastSeenAt:        msTime(ct),
		ExpiresAt:         msTime(exp),
		AbsoluteExpiresAt: msTime(abs),
		UserAgent:         session.ClientText(ns.UserAgent),
		IP:                session.ClientText(ns.IP),
	}
	uaRef := uaRefOf(sess.UserAgent)
	rec := encodeRecord(k.verifier, sessionTimes{ct, ct, exp, abs}, uaRef, sess.Username, sess.IP)
	dl, err := scriptdeadline.At(ctx, s.timeout)
	if err != nil {
		return session.Issued{}, 0, scriptdeadline.Unavailable("creating session", err)
	}
	capped, err := createScript.Run(ctx, s.c, []string{k.session, k.index(), k.uaTable()},
		dl, id, ct, exp, abs, s.maxPerUser, ct-s.maxLife.Milliseconds(), k.prefix(),
		rec, string(uaRef[:]), sess.UserAgent,
	).Int()
	if err != nil {
		// How many it revoked for the cap is lost with the answer.
		if !scriptdeadline.Settle(ctx, err, dl, s.timeout, s.exists(k.session)) {
			return session.Issued{}, 0, scriptdeadline.Unavailable("creating session", err)
		}
		capped = 0
	}
	return session.Issued{Token: token, Session: sess}, capped, nil
}

// Lookup returns the session token names. When more than half of the idle
// window is left it costs one GET and writes nothing; otherwise a script
// slides the expiry, and the session is returned as read when that script
// fails. The session's UserAgent is left empty: the record holds only its
// reference, and reading the text would cost a second command on the hot
// path for a field only listings show.
func (s *Sessions) Lookup(ctx context.Context, token string) (session.Session, error) {
	k, ok := keysOf(token)
	if !ok {
		return session.Session{}, session.ErrNotFound
	}
	v, err := s.c.Get(ctx, k.session).Result()
	switch {
	case errors.Is(err, redis.Nil), wrongType(err):
		return session.Session{}, session.ErrNotFound
	case err != nil:
		return session.Session{}, scriptdeadline.Unavailable("looking up session", err)
	}
	rec, ok := decodeRecord(v)
	if !ok || !rec.verifies(k.verifier) {
		return session.Session{}, session.ErrNotFound
	}
	sess := s.bounded(rec.session(k, ""))
	now := s.now()
	// Redis expires the key by its own clock; a replica whose clock runs
	// ahead must not serve a session it considers over.
	if !sess.ExpiresAt.After(now) {
		return session.Session{}, session.ErrNotFound
	}
	if !s.touchDue(sess, now) {
		return sess, nil
	}
	// The read has found the session live; sliding its expiry is a
	// courtesy that a Redis refusing writes (out of memory, read-only),
	// slow or gone since the read must not turn into a 503: the session
	// is served as read, to expire when it was going to, and a later
	// lookup slides it. Only a touch that finds it gone (revoked,
	// refreshed or expired since the read) ends the lookup.
	dl, err := scriptdeadline.At(ctx, s.timeout)
	if err != nil {
		return sess, nil
	}
	res, err := touchScript.Run(ctx, s.c, []string{k.session}, dl, now.UnixMilli(), s.idle.Milliseconds(), string(k.verifier[:])).Int64Slice()
	switch {
	case errors.Is(err, redis.Nil):
		return session.Session{}, session.ErrNotFound
	case err != nil || len(res) != 2:
		return sess, nil
	}
	sess.LastSeenAt = msTime(res[0])
	sess.ExpiresAt = msTime(res[1])
	return s.bounded(sess), nil
}

// bounded caps the ends of sess at the maximum lifetime now in force, so
// that lowering SESSION_MAX_LIFETIME ends older sessions too. Index
// members past it are dropped by score; a session still served after that
// would be one no listing, cap or logout-all could reach.
func (s *Sessions) bounded(sess session.Session) session.Session {
	end := sess.CreatedAt.Add(s.maxLife)
	if sess.AbsoluteExpiresAt.After(end) {
		sess.AbsoluteExpiresAt = end
	}
	if sess.ExpiresAt.After(end) {
		sess.ExpiresAt = end
	}
	return sess
}

// touchDue reports whether a lookup at now should write a new expiry: only
// when less than half of the idle window is left (the contract lets us skip
// the write before that) and the absolute end leaves room to slide.
func (s *Sessions) touchDue(sess session.Session, now time.Time) bool {
	if sess.ExpiresAt.Sub(now) >= s.idle/2 {
		return false
	}
	next := now.Add(s.idle)
	if sess.AbsoluteExpiresAt.Before(next) {
		next = sess.AbsoluteExpiresAt
	}
	return next.UnixMilli() > sess.ExpiresAt.UnixMilli()
}

// Refresh gives the session token names a new token: a new secret for the
// same session key, so its id, createdAt and index member stay. Of
// concurrent refreshes of one token exactly one succeeds; the others find
// the old secret gone.
func (s *Sessions) Refresh(ctx context.Context, token string) (session.Issued, error) {
	old, ok := keysOf(token)
	if !ok {
		return session.Issued{}, session.ErrNotFound
	}
	secret, err := session.RandomString(tokenBytes)
	if err != nil {
		return session.Issued{}, fmt.Errorf("refreshing session: %w", err)
	}
	next := token[:userIDLen+publicIDLen] + secret
	// The new token names the same keys; only its secret's verifier is
	// another.
	nk := old
	nk.verifier = verifierOf(secret)

	now := s.now()
	dl, err := scriptdeadline.At(ctx, s.timeout)
	if err != nil {
		return session.Issued{}, scriptdeadline.Unavailable("refreshing session", err)
	}
	res, err := refreshScript.Run(ctx, s.c, []string{old.session, old.uaTable()},
		dl, string(old.verifier[:]), string(nk.verifier[:]), now.UnixMilli(), s.idle.Milliseconds(), s.maxLife.Milliseconds(),
	).StringSlice()
	switch {
	case errors.Is(err, redis.Nil):
		return session.Issued{}, session.ErrNotFound
	case err != nil:
		// The record under the new verifier is what the answer would
		// have held.
		ran := func(ctx context.Context) (bool, error) {
			v, err := s.c.Get(ctx, nk.session).Result()
			switch {
			case errors.Is(err, redis.Nil):
				return false, nil
			case err != nil:
				return false, err
			}
			rec, ok := decodeRecord(v)
			if !ok || !rec.verifies(nk.verifier) {
				return false, nil
			}
			// The User-Agent is a courtesy here: the refresh ran.
			ua, _ := s.c.HGet(ctx, nk.uaTable(), rec.uaRef).Result()
			res = []string{v, ua}
			return true, nil
		}
		if !scriptdeadline.Settle(ctx, err, dl, s.timeout, ran) {
			return session.Issued{}, scriptdeadline.Unavailable("refreshing session", err)
		}
	}
	if len(res) != 2 {
		return session.Issued{}, scriptdeadline.Unavailable("refreshing session", fmt.Errorf("got %d values, want 2", len(res)))
	}
	rec, ok := decodeRecord(res[0])
	if !ok {
		return session.Issued{}, session.ErrNotFound
	}
	return session.Issued{Token: next, Session: s.bounded(rec.session(nk, res[1]))}, nil
}

// Revoke ends the session token names, or returns session.ErrNotFound
// when it names none.
func (s *Sessions) Revoke(ctx context.Context, token string) error {
	k, ok := keysOf(token)
	if !ok {
		return session.ErrNotFound
	}
	dl, err := scriptdeadline.At(ctx, s.timeout)
	if err != nil {
		return scriptdeadline.Unavailable("revoking session", err)
	}
	rcpt, err := s.receipt(k.userID)
	if err != nil {
		return fmt.Errorf("revoking session: %w", err)
	}
	n, err := revokeScript.Run(ctx, s.c, []string{k.session, k.index(), rcpt}, dl, k.id, string(k.verifier[:]), s.receiptLife()).Int()
	if err != nil {
		if !scriptdeadline.Settle(ctx, err, dl, s.timeout, s.receipted(rcpt, nil)) {
			return scriptdeadline.Unavailable("revoking session", err)
		}
		n = 1
	}
	if n == 0 {
		return session.ErrNotFound
	}
	return nil
}

// RevokeAll ends every session of the user whose session token names,
// that one included, and returns how many were live; session.ErrNotFound
// when token names no live session, even when the caller found it live a
// moment before: a logout-all racing another revocation of the caller's
// own session must not also succeed. It takes one script call per
// maxPerUserLimit index members, so one call for any index this version
// built; only an index left over the cap (by a cap lowered since, say)
// needs more, and a 503 on one of those leaves the calls before it done.
func (s *Sessions) RevokeAll(ctx context.Context, token string) (int, error) {
	k, ok := keysOf(token)
	if !ok {
		return 0, session.ErrNotFound
	}
	total := 0
	// Only the first call checks the caller's session: a later one may
	// find it among the members an earlier one deleted.
	first := true
	for {
		dl, err := scriptdeadline.At(ctx, s.timeout)
		if err != nil {
			return 0, scriptdeadline.Unavailable("revoking all sessions", err)
		}
		// A receipt per call: a call whose answer was lost is settled
		// by its own, and the loop goes on after it.
		rcpt, err := s.receipt(k.userID)
		if err != nil {
			return 0, fmt.Errorf("revoking all sessions: %w", err)
		}
		res, err := revokeAllScript.Run(ctx, s.c, []string{k.index(), k.session, rcpt},
			dl, k.prefix(), maxPerUserLimit, first, s.receiptLife(), string(k.verifier[:])).Int64Slice()
		switch {
		case err != nil:
			// The receipt holds what the lost answer would have.
			var kept string
			if !scriptdeadline.Settle(ctx, err, dl, s.timeout, s.receipted(rcpt, &kept)) {
				return 0, scriptdeadline.Unavailable("revoking all sessions", err)
			}
			var ended, left int64
			if _, err := fmt.Sscanf(kept, "%d %d", &ended, &left); err != nil {
				return 0, scriptdeadline.Unavailable("revoking all sessions", fmt.Errorf("receipt %q: %w", kept, err))
			}
			res = []int64{ended, left}
		case len(res) != 2:
			return 0, scriptdeadline.Unavailable("revoking all sessions", fmt.Errorf("got %d values, want 2", len(res)))
		case res[0] < 0:
			return 0, session.ErrNotFound
		}
		total += int(res[0])
		if res[1] == 0 {
			return total, nil
		}
		if first {
			// Once a call has run, the rest run on time of their own,
			// past the request's budget and a client that hung up: a
			// logout-all cut off half-way would answer 503 with
			// sessions already ended.
			first = false
			ctx = context.WithoutCancel(ctx)
		}
	}
}

// RevokeByID ends the session with public handle id of the user whose
// session token names.
func (s *Sessions) RevokeByID(ctx context.Context, token, id string) error {
	k, ok := keysOf(token)
	if !ok {
		return session.ErrCallerGone
	}
	if !validPublicID(id) {
		return session.ErrNotFound
	}
	dl, err := scriptdeadline.At(ctx, s.timeout)
	if err != nil {
		return scriptdeadline.Unavailable("revoking session by id", err)
	}
	rcpt, err := s.receipt(k.userID)
	if err != nil {
		return fmt.Errorf("revoking session by id: %w", err)
	}
	n, err := revokeByIDScript.Run(ctx, s.c, []string{sessionKey(k.userID, id), k.index(), rcpt, k.session},
		dl, id, s.receiptLife(), string(k.verifier[:])).Int()
	if err != nil {
		if !scriptdeadline.Settle(ctx, err, dl, s.timeout, s.receipted(rcpt, nil)) {
			return scriptdeadline.Unavailable("revoking session by id", err)
		}
		n = 1
	}
	switch n {
	case 1:
		return nil
	case -1:
		return session.ErrCallerGone
	}
	return session.ErrNotFound
}

// List returns the live sessions of userID, newest first: those among the
// MaxPerUser newest index members, which are all of them once a login has
// trimmed an index left over the cap. A session whose User-Agent is
// missing from the UA table is listed with an empty one.
func (s *Sessions) List(ctx context.Context, userID string) ([]session.Session, error) {
	if !validUserID(userID) {
		return nil, nil
	}
	// Plain reads, not a script: the newest cap members, then one
	// pipelined GET per member and the UA table. Redis spends less than
	// half the time on them that a script doing the same spends
	// (measured on the previous layout: 150 µs against 345 µs for 100
	// sessions, mostly Lua building its reply), and a listing needs no
	// atomicity: a session that ends meanwhile is listed or not, either
	// is right. Two round trips instead of one, on a route that is not
	// the hot path.
	index := indexKey(userID)
	members, err := s.c.ZRevRange(ctx, index, 0, int64(s.maxPerUser)-1).Result()
	if err != nil {
		return nil, scriptdeadline.Unavailable("listing sessions", err)
	}
	if len(members) == 0 {
		return []session.Session{}, nil
	}
	k := keys{userID: userID}
	prefix := k.prefix()
	reads := make([]*redis.StringCmd, len(members))
	var uas *redis.MapStringStringCmd
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range members {
			reads[i] = p.Get(ctx, prefix+m)
		}
		uas = p.HGetAll(ctx, k.uaTable())
		return nil
	})
	// Each command's own error is looked at below: a key of another type
	// (written by hand) is skipped, not an outage.
	if err != nil && !errors.Is(err, redis.Nil) && !wrongType(err) {
		return nil, scriptdeadline.Unavailable("listing sessions", err)
	}
	table, err := uas.Result()
	if err != nil && !wrongType(err) {
		return nil, scriptdeadline.Unavailable("listing sessions", err)
	}
	now := s.now()
	list := make([]session.Session, 0, len(members))
	var gone []any
	for i, read := range reads {
		v, err := read.Result()
		switch {
		case errors.Is(err, redis.Nil):
			gone = append(gone, members[i])
			continue
		case wrongType(err):
			continue
		case err != nil:
			return nil, scriptdeadline.Unavailable("listing sessions", err)
		}
		rec, ok := decodeRecord(v)
		if !ok {
			continue
		}
		k.id = members[i]
		sess := s.bounded(rec.session(k, table[rec.uaRef]))
		if !sess.ExpiresAt.After(now) {
			continue
		}
		list = append(list, sess)
	}
	if len(gone) > 0 {
		// Tidying is not what the caller asked for: a failure leaves it
		// to the next listing or login.
		_ = listTidyScript.Run(ctx, s.c, []string{index}, append([]any{prefix}, gone...)...).Err()
	}
	slices.SortFunc(list, func(a, b session.Session) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return list, nil
}

// exists settles a write whose answer was lost (see
// scriptdeadline.Settle) by whether the key it creates, one of a fresh
// random name, is there.
func (s *Sessions) exists(key string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		n, err := s.c.Exists(ctx, key).Result()
		return n == 1, err
	}
}

// A receipt tells a revocation that ran from one that did not, once its
// answer was lost: "the session is gone" cannot, since a request racing
// this one may have ended it, and then this one must not also succeed.
// The scripts write it, in the user's hash slot, only when they ended
// something, and it lives long enough for the read that settles the
// outcome.
func (s *Sessions) receipt(userID string) (string, error) {
	id, err := session.RandomString(12)
	if err != nil {
		return "", err
	}
	return "rcpt:{" + userID + "}:" + id, nil
}

// receiptLife is how long a receipt lives, in milliseconds: far longer
// than a settling read can come after the write.
func (s *Sessions) receiptLife() int64 { return max(10*time.Second, 10*s.timeout).Milliseconds() }

// receipted reads a receipt: whether the write that names it ran, and,
// when kept is not nil, what it holds.
func (s *Sessions) receipted(key string, kept *string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		v, err := s.c.Get(ctx, key).Result()
		switch {
		case errors.Is(err, redis.Nil):
			return false, nil
		case err != nil:
			return false, err
		}
		if kept != nil {
			*kept = v
		}
		return true, nil
	}
}

// wrongType reports whether err is Redis refusing a command for a key of
// another type than the command's: one written by hand, which holds no
// session (as a record of another format holds none), not an outage.
func wrongType(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.HasPrefix(rerr.Error(), "WRONGTYPE ")
}

// keys are the parts of a token and the Redis names that belong to it.
type keys struct {
	userID   string // the hash tag
	id       string // the public id: the index member
	session  string
	verifier [verifierLen]byte // of the token's secret
}

// keysOf splits a token into its parts and derives its keys, or reports
// false for anything not of the shape Create makes (then no Redis round
// trip is needed to know it names nothing). The session key is built in
// one allocation.
func keysOf(token string) (keys, bool) {
	if len(token) != tokenLen || !session.InTokenAlphabet(token) {
		return keys{}, false
	}
	uid, id := token[:userIDLen], token[userIDLen:userIDLen+publicIDLen]
	return keys{userID: uid, id: id, session: sessionKey(uid, id), verifier: verifierOf(token[userIDLen+publicIDLen:])}, true
}

// prefix is the session key of the user without the public id.
func (k keys) prefix() string { return sessionKey(k.userID, "") }

// index is the key of the user's index.
func (k keys) index() string { return indexKey(k.userID) }

// uaTable is the key of the user's UA table.
func (k keys) uaTable() string { return "ua:{" + k.userID + "}" }

func sessionKey(userID, id string) string { return "s:{" + userID + "}:" + id }
func indexKey(userID string) string       { return "i:{" + userID + "}" }

// validPublicID reports whether id has the shape of the public ids Create
// makes, so that a request cannot put anything else into a key name.
func validPublicID(id string) bool {
	return len(id) == publicIDLen && session.InTokenAlphabet(id)
}

// validUserID reports whether id has the shape of the ids Users makes.
// Anything else could carry braces into a key and move it to another slot.
func validUserID(id string) bool {
	return len(id) == userIDLen && session.InTokenAlphabet(id)
}

// sessionTimes are the four times of a session record, in Unix
// milliseconds.
type sessionTimes struct{ created, seen, expires, absolute int64 }

// session is the session of record r under keys k, with the given
// User-Agent.
func (r record) session(k keys, userAgent string) session.Session {
	return session.Session{
		ID:                k.id,
		UserID:            k.userID,
		Username:          r.username,
		CreatedAt:         msTime(r.times.created),
		LastSeenAt:        msTime(r.times.seen),
		ExpiresAt:         msTime(r.times.expires),
		AbsoluteExpiresAt: msTime(r.times.absolute),
		UserAgent:         userAgent,
		IP:                r.ip,
	}
}

// msTime turns Unix milliseconds into a UTC time.
func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
