// Package session holds the domain of the service: users, sessions, the
// stores that keep them and the errors they return. It imports neither gin
// nor go-redis, so the HTTP and Redis adapters depend on it and not on each
// other.
package session

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors returned by the stores. The HTTP adapter maps each of them to one
// status code in one place.
var (
	// ErrNotFound means the token, session handle or user is unknown,
	// expired or revoked.
	ErrNotFound = errors.New("not found")
	// ErrCallerGone means the session whose token a request carries is no
	// longer live when the store acts on it: it was revoked, by a request
	// that raced this one, or it expired since it was looked up.
	ErrCallerGone = errors.New("caller's session gone")
	// ErrUsernameTaken means a user with the same name, compared without
	// regard to case, already exists.
	ErrUsernameTaken = errors.New("username taken")
	// ErrUnavailable means the store could not be reached, refused or did
	// not answer in time. A call that returns it has changed nothing, even
	// if a slow store runs it later. It must never be reported to a client
	// as an authentication failure: an outage logs nobody out.
	ErrUnavailable = errors.New("session store unavailable")
	// ErrBusy means no password-hashing slot became free in time; the
	// client should retry shortly.
	ErrBusy = errors.New("server busy")
	// ErrShutdownCut is the cause with which a replica cancels the
	// contexts of the requests still in flight when its shutdown timeout
	// runs out: they are the replica's failures (503), not clients that
	// hung up (499), and what they were counted against a limit is given
	// back as after any 503.
	ErrShutdownCut = errors.New("cut off by the shutdown")
)

// CutByShutdown reports whether ctx, a request's, was canceled by the
// replica's shutdown (with ErrShutdownCut) rather than by its client.
func CutByShutdown(ctx context.Context) bool {
	return ctx.Err() != nil && errors.Is(context.Cause(ctx), ErrShutdownCut)
}

// Session is one login of one user, as the store keeps it.
type Session struct {
	// ID is the public handle of the session: safe to show and log, never
	// usable as a token, and kept across refreshes.
	ID string
	// UserID is the stable, random id of the owner; the store uses it to
	// keep all of a user's keys together.
	UserID string
	// Username is the owner's name as registered.
	Username   string
	CreatedAt  time.Time
	LastSeenAt time.Time
	// ExpiresAt is when the session ends if it is not used again: the
	// earlier of the idle expiry and AbsoluteExpiresAt.
	ExpiresAt time.Time
	// AbsoluteExpiresAt is CreatedAt plus the maximum lifetime; nothing
	// extends a session past it.
	AbsoluteExpiresAt time.Time
	UserAgent         string
	// IP is the client address at login, bare, without a port.
	IP string
}

// Issued is a session together with the secret token that names it. The
// token is handed to the client once and never stored or logged.
type Issued struct {
	Token   string
	Session Session
}

// NewSession is what a login knows about the session it opens.
type NewSession struct {
	UserID    string
	Username  string
	UserAgent string
	IP        string
}

// Store keeps sessions. Every method is atomic on its own: a revocation
// always wins against a concurrent lookup, and no session outlives its
// absolute lifetime.
type Store interface {
	// Create opens a session and returns its token. When the user is over
	// the cap on sessions per user, capped counts the oldest sessions it
	// revoked to make room.
	Create(ctx context.Context, s NewSession) (issued Issued, capped int, err error)
	// Lookup returns the live session a token names, sliding its idle
	// expiry when due. Unknown or malformed tokens give ErrNotFound. Its
	// UserAgent may be empty (a store may keep it apart, for List).
	Lookup(ctx context.Context, token string) (Session, error)
	// Refresh replaces the token of a live session with a new one; the old
	// token stops working at once. ID and CreatedAt stay the same.
	Refresh(ctx context.Context, token string) (Issued, error)
	// Revoke ends the session a token names.
	Revoke(ctx context.Context, token string) error
	// RevokeAll ends every live session of the user whose session the
	// token names, that one included, and returns how many; ErrNotFound
	// when the token names no live session.
	RevokeAll(ctx context.Context, token string) (int, error)
	// RevokeByID ends the session with the given public handle of the
	// user whose session the token names. It returns ErrCallerGone when
	// the token names no live session (it may have been revoked since it
	// was looked up), and ErrNotFound when the user has no live session
	// with that handle.
	RevokeByID(ctx context.Context, token, id string) error
	// List returns the user's live sessions, newest CreatedAt first, at
	// most as many as the cap on sessions per user.
	List(ctx context.Context, userID string) ([]Session, error)
}

// User is a registered account.
type User struct {
	// ID is random, made at registration, and never changes.
	ID string
	// Username is the name as registered; lookups ignore case.
	Username string
	// PasswordHash is the encoded argon2id hash of the password.
	PasswordHash string
}

// UserStore keeps users.
type UserStore interface {
	// CreateUser stores a new user, or returns ErrUsernameTaken. When u.ID
	// is empty the store makes a new one; callers leave it empty, since
	// the shape of an id is the store's business.
	CreateUser(ctx context.Context, u User) error
	// UserByName finds a user by name without regard to case, or returns
	// ErrNotFound.
	UserByName(ctx context.Context, username string) (User, error)
}

// MaxClientTextLen bounds the user agent and IP kept with a session: both
// come from the client, and a session should not cost kilobytes of memory.
const MaxClientTextLen = 512

// ClientText cuts s to at most MaxClientTextLen bytes without splitting a
// UTF-8 sequence, after replacing each run of bytes that is not UTF-8
// (HTTP lets a header carry any byte from 0x80 up) with U+FFFD: what a
// session keeps is shown in a JSON listing, which must be UTF-8.
func ClientText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	n := MaxClientTextLen
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
