package scriptdeadline_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/scriptdeadline"
	"redis-session-app/services/api/internal/session"
)

func TestAt(t *testing.T) {
	const timeout = 400 * time.Millisecond
	ms := func(d time.Duration) int64 { return d.Milliseconds() }

	t.Run("TimeoutLessMargin", func(t *testing.T) {
		before := time.Now()
		got, err := scriptdeadline.At(context.Background(), timeout)
		after := time.Now()
		if err != nil {
			t.Fatal(err)
		}
		// Now plus the timeout, less a quarter of it.
		if lo, hi := before.UnixMilli()+ms(300*time.Millisecond), after.UnixMilli()+ms(300*time.Millisecond); got < lo || got > hi {
			t.Errorf("got %d, want in [%d, %d]", got, lo, hi)
		}
	})

	t.Run("EarlierContextDeadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		d, _ := ctx.Deadline()
		got, err := scriptdeadline.At(ctx, timeout)
		if err != nil {
			t.Fatal(err)
		}
		if want := d.Add(-timeout / 4).UnixMilli(); got != want {
			t.Errorf("got %d, want %d", got, want)
		}
	})

	t.Run("NoTimeLeft", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := scriptdeadline.At(ctx, timeout); err == nil {
			t.Error("got no error, want one: the context ends within the margin")
		}
	})
}

func TestClientTimeout(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ReadTimeout: 300 * time.Millisecond})
	defer c.Close()
	if got := scriptdeadline.ClientTimeout(c); got != 300*time.Millisecond {
		t.Errorf("client: got %v, want 300ms", got)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, ReadTimeout: 200 * time.Millisecond})
	defer cc.Close()
	if got := scriptdeadline.ClientTimeout(cc); got != 200*time.Millisecond {
		t.Errorf("cluster client: got %v, want 200ms", got)
	}
	never := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ReadTimeout: -1})
	defer never.Close()
	if got := scriptdeadline.ClientTimeout(never); got != scriptdeadline.DefaultTimeout {
		t.Errorf("client without a timeout: got %v, want %v", got, scriptdeadline.DefaultTimeout)
	}
}

func TestUnavailable(t *testing.T) {
	late := scriptdeadline.Unavailable("writing", replyError("LATE Redis time 2 ms is past the deadline 1"))
	other := scriptdeadline.Unavailable("writing", errors.New("i/o timeout"))
	for _, err := range []error{late, other} {
		if !errors.Is(err, session.ErrUnavailable) {
			t.Errorf("%v: does not wrap %v", err, session.ErrUnavailable)
		}
	}
	if !strings.Contains(late.Error(), "changed nothing") {
		t.Errorf("late: got %q, want it to say the script changed nothing", late)
	}
	if strings.Contains(other.Error(), "changed nothing") {
		t.Errorf("other: got %q, want no word of a late script", other)
	}
}

// replyError is an error as Redis replies it.
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}

// TestSettle: only a failure after which Redis may have run the script
// (its answer did not come) is settled by the read; an answer of Redis's,
// a connection never had and a caller gone are not, and a failed read
// settles nothing.
func TestSettle(t *testing.T) {
	timeout := 40 * time.Millisecond
	readErr := errors.New("read failed too")
	tests := []struct {
		name     string
		err      error
		read     error
		wantRead bool
		want     bool
	}{
		{"ReadTimeout", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, nil, true, true},
		{"CutMidReply", io.ErrUnexpectedEOF, nil, true, true},
		{"ReadFailsToo", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, readErr, true, false},
		{"RedisRefused", replyError("OOM command not allowed"), nil, false, false},
		{"Late", replyError("LATE Redis time 2 ms is past the deadline 1"), nil, false, false},
		{"NeverDialled", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, nil, false, false},
		{"NoFreeConnection", redis.ErrPoolTimeout, nil, false, false},
		{"CallerGone", context.Canceled, nil, false, false},
		{"NoError", nil, nil, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dl, err := scriptdeadline.At(context.Background(), timeout)
			if err != nil {
				t.Fatal(err)
			}
			read := false
			got := scriptdeadline.Settle(context.Background(), tc.err, dl, timeout, func(ctx context.Context) (bool, error) {
				read = true
				// Redis no longer runs the script once the read starts.
				if now := time.Now().UnixMilli(); now < dl {
					t.Errorf("read at %d ms, before the deadline %d ms", now, dl)
				}
				return true, tc.read
			})
			if read != tc.wantRead || got != tc.want {
				t.Errorf("Settle(%v): read %v, settled %v; want read %v, settled %v", tc.err, read, got, tc.wantRead, tc.want)
			}
		})
	}
}
