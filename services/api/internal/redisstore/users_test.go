package redisstore_test

import (
	"context"
	"errors"
	"testing"

	"redis-session-app/services/api/internal/redisstore"
	"redis-session-app/services/api/internal/session"
)

func TestUsers(t *testing.T) {
	e := newEnv(t, redisstore.SessionOptions{})
	ctx := context.Background()
	if err := e.users.CreateUser(ctx, session.User{Username: "Alice", PasswordHash: "hash-1"}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	given := newUserID(t)
	if err := e.users.CreateUser(ctx, session.User{ID: given, Username: "bob.b", PasswordHash: "hash-2"}); err != nil {
		t.Fatalf("CreateUser with an id: %v", err)
	}

	t.Run("Create", func(t *testing.T) {
		tests := []struct {
			name    string
			user    session.User
			wantErr error
		}{
			{"TakenSameCase", session.User{Username: "Alice", PasswordHash: "h"}, session.ErrUsernameTaken},
			{"TakenLowerCase", session.User{Username: "alice", PasswordHash: "h"}, session.ErrUsernameTaken},
			{"TakenUpperCase", session.User{Username: "ALICE", PasswordHash: "h"}, session.ErrUsernameTaken},
			{"OK", session.User{Username: "carol", PasswordHash: "h"}, nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				err := e.users.CreateUser(ctx, tc.user)
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("CreateUser: got %v, want %v", err, tc.wantErr)
				}
			})
		}
	})

	t.Run("CreateInvalid", func(t *testing.T) {
		tests := []struct {
			name string
			user session.User
		}{
			{"MalformedName", session.User{Username: "a b", PasswordHash: "h"}},
			{"NoHash", session.User{Username: "dave"}},
			{"MalformedID", session.User{ID: "{x}", Username: "dave", PasswordHash: "h"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				err := e.users.CreateUser(ctx, tc.user)
				if err == nil || errors.Is(err, session.ErrUnavailable) || errors.Is(err, session.ErrUsernameTaken) {
					t.Errorf("CreateUser: got %v, want a programming error", err)
				}
			})
		}
	})

	t.Run("ByName", func(t *testing.T) {
		tests := []struct {
			name     string
			lookup   string
			wantName string
			wantHash string
			wantErr  error
		}{
			{"AsRegistered", "Alice", "Alice", "hash-1", nil},
			{"OtherCase", "aLiCe", "Alice", "hash-1", nil},
			{"GivenID", "BOB.B", "bob.b", "hash-2", nil},
			{"Unknown", "nobody", "", "", session.ErrNotFound},
			{"Malformed", "a:b", "", "", session.ErrNotFound},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				u, err := e.users.UserByName(ctx, tc.lookup)
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("UserByName: got %v, want %v", err, tc.wantErr)
				}
				if u.Username != tc.wantName || u.PasswordHash != tc.wantHash {
					t.Errorf("user: got %q %q, want %q %q", u.Username, u.PasswordHash, tc.wantName, tc.wantHash)
				}
				if err == nil && len(u.ID) != 11 {
					t.Errorf("user id %q: got length %v, want 11", u.ID, len(u.ID))
				}
			})
		}
	})

	t.Run("GivenIDKept", func(t *testing.T) {
		u, err := e.users.UserByName(ctx, "bob.b")
		if err != nil {
			t.Fatalf("UserByName: %v", err)
		}
		if u.ID != given {
			t.Errorf("id: got %v, want %v", u.ID, given)
		}
	})

	t.Run("NoTTL", func(t *testing.T) {
		if got := e.rdb.PTTL(ctx, "user:alice").Val(); got != -1 {
			t.Errorf("PTTL of a user key: got %v, want -1 (no expiry)", got)
		}
	})
}
