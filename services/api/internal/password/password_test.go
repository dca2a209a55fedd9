package password_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"

	"redis-session-app/services/api/internal/httpapi"
	"redis-session-app/services/api/internal/password"
	"redis-session-app/services/api/internal/session"
)

var _ httpapi.PasswordHasher = (*password.Hasher)(nil)

// cheapParams keep the logic tests fast; only the benchmarks pay the real
// cost.
func cheapParams() *argon2id.Params {
	return &argon2id.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}
}

func newHasher(t *testing.T, slots int, wait time.Duration) *password.Hasher {
	t.Helper()
	h, err := password.NewHasher(cheapParams(), slots, wait)
	if err != nil {
		t.Fatalf("NewHasher: %v", err)
	}
	return h
}

func hash(t *testing.T, h *password.Hasher, pw string) string {
	t.Helper()
	encoded, err := h.Hash(context.Background(), pw)
	if err != nil {
		t.Fatalf("Hash(%q): %v", pw, err)
	}
	return encoded
}

func TestVerify(t *testing.T) {
	h := newHasher(t, 2, time.Second)

	long := strings.Repeat("a", 127)
	tests := []struct {
		name     string
		stored   string
		password string
		want     bool
	}{
		{name: "OK", stored: "correct horse", password: "correct horse", want: true},
		{name: "Wrong", stored: "correct horse", password: "correct horsf", want: false},
		{name: "CaseMatters", stored: "Password1", password: "password1", want: false},
		{name: "LastOf128Chars", stored: long + "a", password: long + "b", want: false},
		{name: "Same128Chars", stored: long + "a", password: long + "a", want: true},
		// Past bcrypt's 72-byte limit: 40 two-byte runes then a difference.
		{name: "MultiByteTail", stored: strings.Repeat("é", 40) + "1", password: strings.Repeat("é", 40) + "2", want: false},
		{name: "MultiByteOK", stored: "пароль-密码-🔑", password: "пароль-密码-🔑", want: true},
		// é precomposed and e + combining accent look alike but differ in bytes.
		{name: "UnicodeFormsDiffer", stored: "caf\u00e9-latte", password: "cafe\u0301-latte", want: false},
		{name: "Empty", stored: "correct horse", password: "", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			encoded := hash(t, h, tc.stored)
			got, err := h.Verify(context.Background(), tc.password, encoded)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestHashIsSalted(t *testing.T) {
	h := newHasher(t, 1, time.Second)
	a, b := hash(t, h, "same password"), hash(t, h, "same password")
	if a == b {
		t.Errorf("got two equal hashes %q, want different salts", a)
	}
	if !strings.HasPrefix(a, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("got %q, want an argon2id hash with the given params", a)
	}
}

func TestVerifyUnknownUser(t *testing.T) {
	h := newHasher(t, 1, time.Second)
	// Whatever the password, the dummy path never matches.
	for _, pw := range []string{"", "password", strings.Repeat("x", 128)} {
		got, err := h.Verify(context.Background(), pw, "")
		if err != nil {
			t.Fatalf("Verify(%q, \"\"): %v", pw, err)
		}
		if got {
			t.Errorf("Verify(%q, \"\"): got %v, want false", pw, got)
		}
	}
}

func TestVerifyMalformed(t *testing.T) {
	h := newHasher(t, 1, time.Second)
	good := hash(t, h, "password")
	parts := strings.Split(good, "$") // "", argon2id, v=19, params, salt, key

	tests := []struct {
		name    string
		encoded string
	}{
		{name: "Garbage", encoded: "not a hash"},
		{name: "Bcrypt", encoded: "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{name: "Argon2i", encoded: strings.Replace(good, "argon2id", "argon2i", 1)},
		{name: "Version", encoded: strings.Replace(good, "v=19", "v=16", 1)},
		{name: "BadBase64", encoded: strings.Join(append(parts[:4:4], "!!!", parts[5]), "$")},
		{name: "ZeroIterations", encoded: strings.Replace(good, "t=1", "t=0", 1)},
		{name: "ZeroParallelism", encoded: strings.Replace(good, "p=1", "p=0", 1)},
		{name: "HugeMemory", encoded: strings.Replace(good, "m=64", "m=4294967295", 1)},
		{name: "EmptyKey", encoded: strings.Join(append(parts[:5:5], ""), "$")},
		{name: "ShortSalt", encoded: strings.Join([]string{"", parts[1], parts[2], parts[3], "c2FsdA", parts[5]}, "$")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := h.Verify(context.Background(), "password", tc.encoded)
			if err == nil {
				t.Fatalf("got match %v and no error, want an error", got)
			}
			if got {
				t.Errorf("got %v, want false", got)
			}
			if errors.Is(err, session.ErrBusy) {
				t.Errorf("got %v, want an error that is not ErrBusy", err)
			}
		})
	}
}

func TestBusy(t *testing.T) {
	t.Run("SlotHeld", func(t *testing.T) {
		h := newHasher(t, 1, 10*time.Millisecond)
		h.Hold(t)

		if _, err := h.Hash(context.Background(), "password"); !errors.Is(err, session.ErrBusy) {
			t.Errorf("Hash: got %v, want %v", err, session.ErrBusy)
		}
		if _, err := h.Verify(context.Background(), "password", ""); !errors.Is(err, session.ErrBusy) {
			t.Errorf("Verify: got %v, want %v", err, session.ErrBusy)
		}
	})

	t.Run("OneOfTwoHeld", func(t *testing.T) {
		h := newHasher(t, 2, 10*time.Millisecond)
		h.Hold(t)
		if _, err := h.Hash(context.Background(), "password"); err != nil {
			t.Errorf("got %v, want nil: one slot is still free", err)
		}
		h.Hold(t)
		if _, err := h.Hash(context.Background(), "password"); !errors.Is(err, session.ErrBusy) {
			t.Errorf("got %v, want %v", err, session.ErrBusy)
		}
	})

	t.Run("ContextDone", func(t *testing.T) {
		// The wait is long: only the cancelled context can end it.
		h := newHasher(t, 1, time.Hour)
		h.Hold(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()

		_, err := h.Hash(ctx, "password")
		if !errors.Is(err, session.ErrBusy) {
			t.Errorf("got %v, want %v", err, session.ErrBusy)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want it to wrap %v", err, context.Canceled)
		}
	})

	t.Run("ContextCancelledWhileWaiting", func(t *testing.T) {
		h := newHasher(t, 1, time.Hour)
		h.Hold(t)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := h.Verify(ctx, "password", "")
			done <- err
		}()
		cancel()
		if err := <-done; !errors.Is(err, session.ErrBusy) {
			t.Errorf("got %v, want %v", err, session.ErrBusy)
		}
	})

	t.Run("SlotFreedWhileWaiting", func(t *testing.T) {
		h := newHasher(t, 1, time.Hour)
		release := h.Hold(t)
		done := make(chan error, 1)
		go func() {
			_, err := h.Hash(context.Background(), "password")
			done <- err
		}()
		release()
		if err := <-done; err != nil {
			t.Errorf("got %v, want nil", err)
		}
	})

	t.Run("SlotReturnedAfterUse", func(t *testing.T) {
		h := newHasher(t, 1, 10*time.Millisecond)
		for i := range 3 {
			if _, err := h.Hash(context.Background(), "password"); err != nil {
				t.Fatalf("hash %d: got %v, want nil", i, err)
			}
		}
		// Hold fails the test if a slot leaked.
		h.Hold(t)
	})

	t.Run("MalformedDoesNotTakeSlot", func(t *testing.T) {
		h := newHasher(t, 1, 10*time.Millisecond)
		h.Hold(t)
		_, err := h.Verify(context.Background(), "password", "not a hash")
		if err == nil || errors.Is(err, session.ErrBusy) {
			t.Errorf("got %v, want a decoding error", err)
		}
	})
}

func TestNewHasher(t *testing.T) {
	tests := []struct {
		name    string
		params  *argon2id.Params
		slots   int
		wait    time.Duration
		wantErr bool
	}{
		{name: "OK", params: cheapParams(), slots: 1, wait: time.Second},
		{name: "ErrNilParams", params: nil, slots: 1, wait: time.Second, wantErr: true},
		{name: "ErrZeroSlots", params: cheapParams(), slots: 0, wait: time.Second, wantErr: true},
		{name: "ErrZeroWait", params: cheapParams(), slots: 1, wait: 0, wantErr: true},
		{name: "ErrZeroIterations", params: &argon2id.Params{Memory: 64, Parallelism: 1, SaltLength: 16, KeyLength: 32}, slots: 1, wait: time.Second, wantErr: true},
		{name: "ErrZeroParallelism", params: &argon2id.Params{Memory: 64, Iterations: 1, SaltLength: 16, KeyLength: 32}, slots: 1, wait: time.Second, wantErr: true},
		{name: "ErrShortKey", params: &argon2id.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 4}, slots: 1, wait: time.Second, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := password.NewHasher(tc.params, tc.slots, tc.wait)
			if gotErr := err != nil; gotErr != tc.wantErr {
				t.Fatalf("got error %v, want error %v", err, tc.wantErr)
			}
			if err == nil && h == nil {
				t.Errorf("got nil Hasher and no error")
			}
		})
	}
}

func TestDefaultParams(t *testing.T) {
	p := password.DefaultParams()
	// A caller changing the returned value must not change the next one.
	p.Memory = 1
	if got, want := password.DefaultParams().Memory, uint32(19*1024); got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := password.NewHasher(password.DefaultParams(), 1, time.Second); err != nil {
		t.Errorf("NewHasher(DefaultParams()): got %v, want nil", err)
	}
}

func BenchmarkHash(b *testing.B) {
	h, err := password.NewHasher(password.DefaultParams(), 1, time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	h, err := password.NewHasher(password.DefaultParams(), 1, time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	encoded, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		ok, err := h.Verify(ctx, "correct horse battery staple", encoded)
		if err != nil || !ok {
			b.Fatalf("got %v, %v, want true, nil", ok, err)
		}
	}
}
