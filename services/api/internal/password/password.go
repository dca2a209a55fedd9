// Package password hashes and verifies passwords with argon2id, running at
// most a fixed number of hashes at once so that a login storm cannot take
// every CPU away from authenticated reads.
package password

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/alexedwards/argon2id"

	"redis-session-app/services/api/internal/session"
)

// DefaultParams returns the argon2id cost used for new hashes.
//
// These are OWASP's first recommended argon2id setting (19 MiB, two passes,
// one lane). One lane because a replica already runs one hash per CPU at
// once: spreading a single hash over several lanes would only make the hashes
// queue behind each other, not finish sooner under load. 19 MiB per hash keeps
// the memory of a 2-core replica's hashing under 40 MiB. Measured with
// BenchmarkHash on the 2-core build machine (go1.26.8, linux/amd64, AMD
// EPYC): 36 to 48 ms and 19 MiB allocated per Hash or Verify, so a 2-core
// replica sustains some 40 to 50 logins per second — slow enough to make
// guessing expensive, fast enough that a login does not feel slow.
func DefaultParams() *argon2id.Params {
	return &argon2id.Params{
		Memory:      19 * 1024,
		Iterations:  2,
		Parallelism: 1,
		SaltLength:  16,
		KeyLength:   32,
	}
}

// Bounds on the parameters of a hash read back from the store. A hash
// outside them is refused rather than computed: a corrupted or planted
// record must not be able to make one verification eat a gigabyte of memory,
// spin for minutes, or — with an empty key — match every password.
const (
	maxMemoryKiB   = 256 * 1024
	maxIterations  = 16
	minSaltLength  = 8
	minKeyLength   = 16
	maxSaltOrKey   = 1024
	maxParallelism = 16
)

// Hasher hashes and checks passwords with bounded concurrency. It is safe for
// concurrent use.
type Hasher struct {
	params *argon2id.Params
	// slots holds one token per hash in flight; its capacity is the
	// maximum number of concurrent hashes.
	slots chan struct{}
	wait  time.Duration
	// dummy is verified against when the user is unknown, so that an
	// unknown username costs as much as a wrong password and cannot be
	// told apart by timing.
	dummy string
}

// NewHasher returns a Hasher that makes new hashes with p, runs at most slots
// hashes at once, and lets a caller wait at most wait for a free slot.
func NewHasher(p *argon2id.Params, slots int, wait time.Duration) (*Hasher, error) {
	if p == nil {
		return nil, errors.New("password: nil params")
	}
	if err := checkParams(*p); err != nil {
		return nil, fmt.Errorf("password: %w", err)
	}
	if slots < 1 {
		return nil, fmt.Errorf("password: slots must be at least 1, got %d", slots)
	}
	if wait <= 0 {
		return nil, fmt.Errorf("password: wait must be positive, got %v", wait)
	}

	// Copy so that a caller changing its Params later cannot change ours.
	params := *p

	// The dummy is hashed from a random secret nobody knows, so no
	// password can match it even by accident.
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("password: reading random bytes: %w", err)
	}
	dummy, err := argon2id.CreateHash(base64.RawStdEncoding.EncodeToString(secret), &params)
	if err != nil {
		return nil, fmt.Errorf("password: making dummy hash: %w", err)
	}

	return &Hasher{
		params: &params,
		slots:  make(chan struct{}, slots),
		wait:   wait,
		dummy:  dummy,
	}, nil
}

// Hash returns the encoded argon2id hash of password, with a fresh random
// salt. Every byte of password counts. It returns an error wrapping
// session.ErrBusy when no slot frees up in time or ctx ends while waiting.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()

	var encoded string
	err := atLowPriority(func() error {
		var err error
		encoded, err = argon2id.CreateHash(password, h.params)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("password: hashing: %w", err)
	}
	return encoded, nil
}

// Verify reports whether password matches encoded. An empty encoded hash
// (an unknown user) is checked against the dummy hash at the same cost and
// always reports false. A malformed encoded hash is an error. It returns an
// error wrapping session.ErrBusy when no slot frees up in time or ctx ends
// while waiting.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (bool, error) {
	unknown := encoded == ""
	if unknown {
		encoded = h.dummy
	}

	// Decode before taking a slot: a bad record is refused at no cost.
	p, _, _, err := argon2id.DecodeHash(encoded)
	if err != nil {
		return false, fmt.Errorf("password: decoding hash: %w", err)
	}
	if err := checkParams(*p); err != nil {
		return false, fmt.Errorf("password: decoding hash: %w", err)
	}

	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()

	var match bool
	err = atLowPriority(func() error {
		var err error
		match, err = argon2id.ComparePasswordAndHash(password, encoded)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("password: comparing: %w", err)
	}
	return match && !unknown, nil
}

// atLowPriority runs f on an OS thread of its own at the lowest priority
// and waits for it. Under a login storm the kernel then runs the request
// handlers first, and logins slow down instead of reads. A nice value
// ranks threads within one scheduling group: the process's own threads,
// and other processes only where they share its group (the cgroup of a
// container, or the autogroup of processes started from one session);
// between groups, their CPU shares decide. The thread
// is never used again (the goroutine ends while locked to it, so the
// runtime discards it): once lowered, its priority cannot be raised back
// without privilege. A new thread per hash costs microseconds against a
// hash's tens of milliseconds.
func atLowPriority(f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // and never unlocked: see above
		lowerThreadPriority()
		// A panic here would not reach the request's recovery, which
		// runs on the caller's goroutine, and would end the process.
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("password: panic while hashing: %v", r)
			}
		}()
		done <- f()
	}()
	return <-done
}

// acquire takes a hashing slot, waiting at most h.wait from now.
func (h *Hasher) acquire(ctx context.Context) error {
	// A free slot is taken at once, without a timer.
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("password: %w: %w", session.ErrBusy, err)
	}

	timer := time.NewTimer(h.wait)
	defer timer.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-timer.C:
		return fmt.Errorf("password: %w: no hashing slot free within %v", session.ErrBusy, h.wait)
	case <-ctx.Done():
		return fmt.Errorf("password: %w: %w", session.ErrBusy, ctx.Err())
	}
}

func (h *Hasher) release() {
	<-h.slots
}

// checkParams reports whether p can be computed safely: argon2 panics on zero
// passes or lanes, and an empty key would match any password.
func checkParams(p argon2id.Params) error {
	switch {
	case p.Iterations < 1 || p.Iterations > maxIterations:
		return fmt.Errorf("iterations %d outside 1..%d", p.Iterations, maxIterations)
	case p.Parallelism < 1 || p.Parallelism > maxParallelism:
		return fmt.Errorf("parallelism %d outside 1..%d", p.Parallelism, maxParallelism)
	case p.Memory < 8*uint32(p.Parallelism) || p.Memory > maxMemoryKiB:
		return fmt.Errorf("memory %d KiB outside %d..%d", p.Memory, 8*uint32(p.Parallelism), maxMemoryKiB)
	case p.SaltLength < minSaltLength || p.SaltLength > maxSaltOrKey:
		return fmt.Errorf("salt length %d outside %d..%d", p.SaltLength, minSaltLength, maxSaltOrKey)
	case p.KeyLength < minKeyLength || p.KeyLength > maxSaltOrKey:
		return fmt.Errorf("key length %d outside %d..%d", p.KeyLength, minKeyLength, maxSaltOrKey)
	}
	return nil
}
