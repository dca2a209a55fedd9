package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/scriptdeadline"
	"redis-session-app/services/api/internal/session"
)

// Users keeps user records in Redis, the only keys without a TTL:
//
//	user:<lowercase username>  HASH {id, name (as registered), pw (argon2id hash)}
//
// It implements session.UserStore.
type Users struct {
	c       redis.UniversalClient
	timeout time.Duration // of c's calls, for script deadlines
}

var _ session.UserStore = (*Users)(nil)

// NewUsers returns a user store on c.
func NewUsers(c redis.UniversalClient) *Users {
	return &Users{c: c, timeout: scriptdeadline.ClientTimeout(c)}
}

// newUserID returns a fresh random user id, of the shape session tokens and
// keys rely on.
func newUserID() (string, error) {
	return session.RandomString(userIDBytes)
}

// CreateUser stores u, or returns session.ErrUsernameTaken when a user of
// the same name, regardless of case, exists. When u.ID is empty a new id is
// made; a caller-supplied id must have the shape newUserID gives.
func (s *Users) CreateUser(ctx context.Context, u session.User) error {
	if !session.ValidUsername(u.Username) {
		return errors.New("creating user: malformed username")
	}
	if u.PasswordHash == "" {
		return errors.New("creating user: empty password hash")
	}
	if u.ID == "" {
		id, err := newUserID()
		if err != nil {
			return fmt.Errorf("creating user: %w", err)
		}
		u.ID = id
	}
	if !validUserID(u.ID) {
		return errors.New("creating user: malformed user id")
	}
	dl, err := scriptdeadline.At(ctx, s.timeout)
	if err != nil {
		return scriptdeadline.Unavailable("creating user", err)
	}
	stored, err := createUserScript.Run(ctx, s.c, []string{userKey(u.Username)}, dl, u.ID, u.Username, u.PasswordHash).Int()
	if err != nil {
		// The hash's random salt tells this registration's record from
		// anyone else's.
		ours := func(ctx context.Context) (bool, error) {
			pw, err := s.c.HGet(ctx, userKey(u.Username), "pw").Result()
			if errors.Is(err, redis.Nil) {
				return false, nil
			}
			return pw == u.PasswordHash, err
		}
		if !scriptdeadline.Settle(ctx, err, dl, s.timeout, ours) {
			return scriptdeadline.Unavailable("creating user", err)
		}
		stored = 1
	}
	if stored == 0 {
		return session.ErrUsernameTaken
	}
	return nil
}

// UserByName finds a user by name regardless of case.
func (s *Users) UserByName(ctx context.Context, username string) (session.User, error) {
	if !session.ValidUsername(username) {
		return session.User{}, session.ErrNotFound
	}
	f, err := s.c.HGetAll(ctx, userKey(username)).Result()
	if err != nil {
		return session.User{}, scriptdeadline.Unavailable("looking up user", err)
	}
	u := session.User{ID: f["id"], Username: f["name"], PasswordHash: f["pw"]}
	if !validUserID(u.ID) || u.Username == "" || u.PasswordHash == "" {
		return session.User{}, session.ErrNotFound
	}
	return u, nil
}

func userKey(username string) string {
	return "user:" + session.CanonicalUsername(username)
}
