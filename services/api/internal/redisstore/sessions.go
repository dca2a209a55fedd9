package redisstore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/scriptdeadline"
	"redis-session-app/services/api/internal/session"
)

// Shapes of ids and tokens. A user id is 8 random bytes (11 characters); a
// token is the owner's user id followed by 32 random bytes (43 characters),
// so the store finds the user's hash slot from the token alone while the
// token still carries 256 random bits.
const (
	userIDBytes  = 8
	userIDLen    = 11
	tokenBytes   = 32
	publicIDSize = 16
	publicIDLen  = 22
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

// Field names of a session hash: short, since every session carries them.
const (
	fUserID    = "uid"
	fUsername  = "user"
	fID        = "id"
	fCreated   = "ct"
	fSeen      = "seen"
	fExpires   = "exp"
	fAbsolute  = "abs"
	fUserAgent = "ua"
	fIP        = "ip"
	// fIDMap marks a session that has its id map entry; sessions of the
	// previous version have none until listed or refreshed.
	fIDMap = "idm"
)

// sessionFields are the fields the store reads of a session, in the order
// readSession takes them: the session and the id map flag. They are read
// with HMGET into strings (an absent field reads as ""), not HGETALL into
// a map, which costs a lookup half again as many allocations.
var sessionFields = []string{fID, fCreated, fSeen, fExpires, fAbsolute, fUserID, fUsername, fUserAgent, fIP, fIDMap}

// sessionFieldArgs are sessionFields boxed once: boxing them per read
// would cost an allocation each.
var sessionFieldArgs = func() []any {
	args := make([]any, len(sessionFields))
	for i, f := range sessionFields {
		args[i] = f
	}
	return args
}()

// readCmd is an HMGET of sessionFields on key.
func readCmd(ctx context.Context, key string) *redis.StringSliceCmd {
	args := make([]any, 0, 2+len(sessionFieldArgs))
	args = append(args, "hmget", key)
	return redis.NewStringSliceCmd(ctx, append(args, sessionFieldArgs...)...)
}

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
//	sess:{userID}:<hex sha256(token)>  HASH, expires at the idle or absolute end
//	idx:{userID}                       ZSET of the hex hashes (the members), score
//	                                   createdAt ms; expires with the last absolute end
//	sid:{userID}:<public id>           STRING, the member of that session: the id
//	                                   map; expires with the session
//
// The index holds at most MaxPerUser members once a login has trimmed it;
// members of sessions that ended by expiry stay until a login or a listing
// drops them. Every call's work is bounded by the cap (see scripts.go).
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
	// Both are programming errors, not outages, and must not look like one.
	if !validUserID(ns.UserID) {
		return session.Issued{}, 0, errors.New("creating session: malformed user id")
	}
	if ns.Username == "" {
		return session.Issued{}, 0, errors.New("creating session: empty username")
	}
	secret, err := session.RandomString(tokenBytes)
	if err != nil {
		return session.Issued{}, 0, fmt.Errorf("creating session: %w", err)
	}
	id, err := session.RandomString(publicIDSize)
	if err != nil {
		return session.Issued{}, 0, fmt.Errorf("creating session: %w", err)
	}
	token := ns.UserID + secret
	k := keysOf(token)

	now := s.now()
	ct := now.UnixMilli()
	abs := ct + s.maxLife.Milliseconds()
	exp := min(ct+s.idle.Milliseconds(), abs)
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
	dl, err := scriptdeadline.At(ctx, s.timeout)
	if err != nil {
		return session.Issued{}, 0, scriptdeadline.Unavailable("creating session", err)
	}
	capped, err := createScript.Run(ctx, s.c, []string{k.session, k.index(), idMapKey(ns.UserID, id)},
		dl, k.member, ct, exp, abs, s.maxPerUser, ct-s.maxLife.Milliseconds(), k.prefix, idMapPrefix(ns.UserID),
		fIDMap, 1,
		fUserID, sess.UserID,
		fUsername, sess.Username,
		fID, sess.ID,
		fCreated, ct,
		fSeen, ct,
		fExpires, exp,
		fAbsolute, abs,
		fUserAgent, sess.UserAgent,
		fIP, sess.IP,
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
// window is left it costs one HMGET and writes nothing; otherwise a
// script slides the expiry, and the session is returned as read when that
// script fails.
func (s *Sessions) Lookup(ctx context.Context, token string) (session.Session, error) {
	if !session.ValidToken(token) {
		return session.Session{}, session.ErrNotFound
	}
	k := keysOf(token)
	read := readCmd(ctx, k.session)
	if err := s.c.Process(ctx, read); err != nil {
		return session.Session{}, scriptdeadline.Unavailable("looking up session", err)
	}
	sess, _, ok := readSession(k.userID, read.Val())
	if !ok {
		return session.Session{}, session.ErrNotFound
	}
	sess = s.bounded(sess)
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
	// lookup slides it. Only a touch that finds it gone (revoked or
	// expired since the read) ends the lookup.
	dl, err := scriptdeadline.At(ctx, s.timeout)
	if err != nil {
		return sess, nil
	}
	res, err := touchScript.Run(ctx, s.c, []string{k.session}, dl, now.UnixMilli(), s.idle.Milliseconds(), idMapPrefix(k.userID)).Int64Slice()
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

// Refresh gives the session token names a new token. Of concurrent
// refreshes of one token exactly one succeeds; the others find the old
// token gone.
func (s *Sessions) Refresh(ctx context.Context, token string) (session.Issued, error) {
	if !session.ValidToken(token) {
		return session.Issued{}, session.ErrNotFound
	}
	old := keysOf(token)
	secret, err := session.RandomString(tokenBytes)
	if err != nil {
		return session.Issued{}, fmt.Errorf("refreshing session: %w", err)
	}
	// The new token keeps the first userIDLen characters of the old one,
	// so both keys share the hash slot.
	next := old.userID + secret
	nk := keysOf(next)

	now := s.now()
	dl, err := scriptdeadline.At(ctx, s.timeout)
	if err != nil {
		return session.Issued{}, scriptdeadline.Unavailable("refreshing session", err)
	}
	args := []any{dl, old.member, nk.member, now.UnixMilli(), s.idle.Milliseconds(), s.maxLife.Milliseconds(), idMapPrefix(old.userID)}
	args = append(args, sessionFieldArgs...)
	res, err := refreshScript.Run(ctx, s.c, []string{old.session, nk.session, old.index()}, args...).StringSlice()
	switch {
	case errors.Is(err, redis.Nil):
		return session.Issued{}, session.ErrNotFound
	case err != nil:
		// The session under its new key is what the answer would have
		// held.
		ran := func(ctx context.Context) (bool, error) {
			read := readCmd(ctx, nk.session)
			if err := s.c.Process(ctx, read); err != nil {
				return false, err
			}
			res = read.Val()
			_, _, ok := readSession(old.userID, res)
			return ok, nil
		}
		if !scriptdeadline.Settle(ctx, err, dl, s.timeout, ran) {
			return session.Issued{}, scriptdeadline.Unavailable("refreshing session", err)
		}
	}
	sess, _, ok := readSession(old.userID, res)
	if !ok {
		return session.Issued{}, session.ErrNotFound
	}
	return session.Issued{Token: next, Session: s.bounded(sess)}, nil
}

// Revoke ends the session token names, or returns session.ErrNotFound
// when it names none.
func (s *Sessions) Revoke(ctx context.Context, token string) error {
	if !session.ValidToken(token) {
		return session.ErrNotFound
	}
	k := keysOf(token)
	dl, err := scriptdeadline.At(ctx, s.timeout)
	if err != nil {
		return scriptdeadline.Unavailable("revoking session", err)
	}
	rcpt, err := s.receipt(k.userID)
	if err != nil {
		return fmt.Errorf("revoking session: %w", err)
	}
	n, err := revokeScript.Run(ctx, s.c, []string{k.session, k.index(), rcpt}, dl, k.member, idMapPrefix(k.userID), s.receiptLife()).Int()
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
// built; only an index left over the cap by a version without one needs
// more, and a 503 on one of those leaves the calls before it done.
func (s *Sessions) RevokeAll(ctx context.Context, token string) (int, error) {
	if !session.ValidToken(token) {
		return 0, session.ErrNotFound
	}
	k := keysOf(token)
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
		res, err := revokeAllScript.Run(ctx, s.c, []string{k.index(), k.session, rcpt}, dl, k.prefix, maxPerUserLimit, first, s.receiptLife()).Int64Slice()
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
	if !session.ValidToken(token) {
		return session.ErrCallerGone
	}
	if !validPublicID(id) {
		return session.ErrNotFound
	}
	k := keysOf(token)
	dl, err := scriptdeadline.At(ctx, s.timeout)
	if err != nil {
		return scriptdeadline.Unavailable("revoking session by id", err)
	}
	rcpt, err := s.receipt(k.userID)
	if err != nil {
		return fmt.Errorf("revoking session by id: %w", err)
	}
	n, err := revokeByIDScript.Run(ctx, s.c, []string{idMapKey(k.userID, id), k.index(), rcpt, k.session}, dl, k.prefix, s.receiptLife()).Int()
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
// trimmed an index left over the cap by a version without one.
func (s *Sessions) List(ctx context.Context, userID string) ([]session.Session, error) {
	if !validUserID(userID) {
		return nil, nil
	}
	// Plain reads, not a script: the newest cap members, then one
	// pipelined HMGET per member. Redis spends less than half the time
	// on them that a script doing the same spends (measured: 150 µs
	// against 345 µs for 100 sessions, mostly Lua building its reply),
	// and a listing needs no atomicity: a session that ends meanwhile is
	// listed or not, either is right. Two round trips instead of one, on
	// a route that is not the hot path.
	index := indexKey(userID)
	members, err := s.c.ZRevRange(ctx, index, 0, int64(s.maxPerUser)-1).Result()
	if err != nil {
		return nil, scriptdeadline.Unavailable("listing sessions", err)
	}
	prefix := sessionPrefix(userID)
	reads := make([]*redis.StringSliceCmd, len(members))
	if len(members) > 0 {
		_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, m := range members {
				reads[i] = readCmd(ctx, prefix+m)
				_ = p.Process(ctx, reads[i])
			}
			return nil
		})
		if err != nil {
			return nil, scriptdeadline.Unavailable("listing sessions", err)
		}
	}
	now := s.now()
	list := make([]session.Session, 0, len(members))
	var gone, repair []any
	for i, read := range reads {
		vals, err := read.Result()
		if err != nil {
			return nil, scriptdeadline.Unavailable("listing sessions", err)
		}
		if len(vals) != len(sessionFields) {
			return nil, scriptdeadline.Unavailable("listing sessions", fmt.Errorf("HMGET answered %d values, want %d", len(vals), len(sessionFields)))
		}
		// HMGET answers all nils only for a key that does not exist
		// (every session hash holds its id).
		if vals[0] == "" {
			gone = append(gone, members[i])
			continue
		}
		sess, hasIDMap, ok := readSession(userID, vals)
		if !ok {
			continue
		}
		if !hasIDMap && validPublicID(sess.ID) {
			// ExpiresAt is still the stored expiry here, before bounded.
			repair = append(repair, members[i], sess.ID, sess.ExpiresAt.UnixMilli())
		}
		if sess = s.bounded(sess); !sess.ExpiresAt.After(now) {
			continue
		}
		list = append(list, sess)
	}
	if len(gone) > 0 || len(repair) > 0 {
		args := append([]any{prefix, idMapPrefix(userID), fIDMap, len(gone)}, gone...)
		// Tidying is not what the caller asked for: a failure leaves it
		// to the next listing or login.
		_ = listRepairScript.Run(ctx, s.c, []string{index}, append(args, repair...)...).Err()
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

// keys are the Redis names that belong to one token.
type keys struct {
	userID  string // the hash tag
	member  string // hex SHA-256 of the token: the index member
	prefix  string // session key without the member
	session string
}

// keysOf derives the keys of a token that passed session.ValidToken. A
// token not made here still gets keys (from its first characters) that
// simply hold nothing. The session key is built in one allocation, and
// the member and prefix are parts of it: a lookup needs nothing else.
func keysOf(token string) keys {
	uid := token[:userIDLen]
	sum := sha256.Sum256([]byte(token))
	var member [2 * sha256.Size]byte
	hex.Encode(member[:], sum[:])
	// sessionPrefix(uid) + member as one concatenation, so one
	// allocation: calling sessionPrefix would cost a second one.
	key := "sess:{" + uid + "}:" + string(member[:])
	n := len(key) - len(member)
	return keys{userID: uid, member: key[n:], prefix: key[:n], session: key}
}

// index is the key of the user's index.
func (k keys) index() string { return indexKey(k.userID) }

func sessionPrefix(userID string) string { return "sess:{" + userID + "}:" }
func indexKey(userID string) string      { return "idx:{" + userID + "}" }
func idMapPrefix(userID string) string   { return "sid:{" + userID + "}:" }
func idMapKey(userID, id string) string  { return idMapPrefix(userID) + id }

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

// readSession reads the values of an HMGET of sessionFields on a session
// of userID, and whether it has its id map entry. Anything missing or
// unreadable, or an owner other than userID, makes the whole session
// unknown: a corrupt record must not let anyone in.
func readSession(userID string, vals []string) (sess session.Session, hasIDMap, ok bool) {
	if len(vals) != len(sessionFields) {
		return session.Session{}, false, false
	}
	times, ok := parseTimes(vals[1], vals[2], vals[3], vals[4])
	if !ok || vals[0] == "" || vals[5] != userID || vals[6] == "" {
		return session.Session{}, false, false
	}
	sess = times.session(vals[0], vals[7], vals[8])
	sess.UserID, sess.Username = userID, vals[6]
	return sess, vals[9] != "", true
}

// sessionTimes are the four times of a session hash, in Unix milliseconds.
type sessionTimes struct{ created, seen, expires, absolute int64 }

// parseTimes reads the four times of a session hash; any of them missing
// or not a positive integer makes the session unreadable.
func parseTimes(created, seen, expires, absolute string) (sessionTimes, bool) {
	var ms [4]int64
	for i, v := range [4]string{created, seen, expires, absolute} {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return sessionTimes{}, false
		}
		ms[i] = n
	}
	return sessionTimes{ms[0], ms[1], ms[2], ms[3]}, true
}

// session is a session with these times and the given id and client text.
func (t sessionTimes) session(id, userAgent, ip string) session.Session {
	return session.Session{
		ID:                id,
		CreatedAt:         msTime(t.created),
		LastSeenAt:        msTime(t.seen),
		ExpiresAt:         msTime(t.expires),
		AbsoluteExpiresAt: msTime(t.absolute),
		UserAgent:         userAgent,
		IP:                ip,
	}
}

// msTime turns Unix milliseconds into a UTC time.
func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
