package batchwriter_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"redis-session-app/services/api/internal/batchwriter"
)

// recorder is an io.Writer that keeps what it got and counts the calls.
type recorder struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	calls int
	err   error
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.err != nil {
		return 0, r.err
	}
	return r.buf.Write(p)
}

func (r *recorder) state() (string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String(), r.calls
}

func TestCloseWritesEverythingInOrder(t *testing.T) {
	const writers, lines = 8, 500
	rec := &recorder{}
	w := batchwriter.New(rec, batchwriter.Options{Delay: time.Hour, Limit: 4 << 10})
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				if _, err := fmt.Fprintf(w, "%d %d\n", g, i); err != nil {
					t.Errorf("Write: got %v, want nil", err)
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: got %v, want nil", err)
	}
	out, calls := rec.state()
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("lines: got %d, want %d", len(got), writers*lines)
	}
	next := make([]int, writers)
	for _, line := range got {
		var g, i int
		if _, err := fmt.Sscanf(line, "%d %d", &g, &i); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if i != next[g] {
			t.Fatalf("writer %d: got line %d, want %d", g, i, next[g])
		}
		next[g]++
	}
	// A delay of an hour: only the limit and Close hand the queue on.
	if calls >= writers*lines/10 {
		t.Errorf("calls to the underlying writer: got %d, want far fewer than %d writes", calls, writers*lines)
	}
}

func TestWriteIsHandedOnWithinDelay(t *testing.T) {
	rec := &recorder{}
	w := batchwriter.New(rec, batchwriter.Options{Delay: time.Millisecond})
	t.Cleanup(func() { _ = w.Close() })
	for i := range 3 {
		line := fmt.Sprintf("line %d\n", i)
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatalf("Write: got %v, want nil", err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			out, _ := rec.state()
			if strings.HasSuffix(out, line) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("got %q after 5s, want it to end with %q", out, line)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

func TestFullQueueIsHandedOnWithoutWaitingForDelay(t *testing.T) {
	rec := &recorder{}
	w := batchwriter.New(rec, batchwriter.Options{Delay: time.Hour, Limit: 100})
	t.Cleanup(func() { _ = w.Close() })
	line := []byte(strings.Repeat("x", 59) + "\n")
	if _, err := w.Write(line); err != nil {
		t.Fatalf("Write: got %v, want nil", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if out, _ := rec.state(); out == string(line) {
			break
		}
		if time.Now().After(deadline) {
			out, _ := rec.state()
			t.Fatalf("got %q after 5s, want the line past half the limit handed on", out)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWriteAfterCloseGoesStraightThrough(t *testing.T) {
	rec := &recorder{}
	w := batchwriter.New(rec, batchwriter.Options{Delay: time.Hour})
	if _, err := w.Write([]byte("before\n")); err != nil {
		t.Fatalf("Write: got %v, want nil", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: got %v, want nil", err)
	}
	if _, err := w.Write([]byte("after\n")); err != nil {
		t.Fatalf("Write after Close: got %v, want nil", err)
	}
	if out, _ := rec.state(); out != "before\nafter\n" {
		t.Errorf("got %q, want %q", out, "before\nafter\n")
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
}

func TestCloseReturnsTheWriteError(t *testing.T) {
	want := errors.New("disk full")
	rec := &recorder{err: want}
	w := batchwriter.New(rec, batchwriter.Options{})
	if _, err := w.Write([]byte("lost\n")); err != nil {
		t.Fatalf("Write: got %v, want nil", err)
	}
	if err := w.Close(); !errors.Is(err, want) {
		t.Errorf("Close: got %v, want %v", err, want)
	}
}

// BenchmarkWrite compares a log line written straight to a file with one
// queued, both to a file, from as many goroutines as GOMAXPROCS.
func BenchmarkWrite(b *testing.B) {
	line := []byte(`{"time":"2026-12-01T10:00:00.000000000Z","level":"INFO","msg":"request","instance":"api-1","request_id":"AbCdEf-1a2b","method":"GET","route":"/profile","status":200,"duration_ms":0.123,"client_ip":"203.0.113.7","session":"0123456789abcdefghijkl"}` + "\n")
	b.Run("Direct", func(b *testing.B) {
		f := logFile(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = f.Write(line)
			}
		})
	})
	b.Run("Batched", func(b *testing.B) {
		w := batchwriter.New(logFile(b), batchwriter.Options{})
		b.Cleanup(func() { _ = w.Close() })
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = w.Write(line)
			}
		})
	})
}

// logFile is a file in the test's temporary directory: a replica under
// `make bench` logs to a file.
func logFile(b *testing.B) *os.File {
	b.Helper()
	f, err := os.Create(filepath.Join(b.TempDir(), "api.log"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.Close() })
	return f
}
