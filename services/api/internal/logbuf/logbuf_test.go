package logbuf_test

import (
	"fmt"
	"reflect"
	"sync"
	"testing"

	"redis-session-app/services/api/internal/logbuf"
)

func TestBufferConcurrentWrites(t *testing.T) {
	var b logbuf.Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				fmt.Fprintln(&b, "line")
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := len(b.Lines()); got != 400 {
		t.Errorf("got %d lines, want 400", got)
	}
}

func TestBufferLines(t *testing.T) {
	var b logbuf.Buffer
	fmt.Fprint(&b, "a\nb\n\nc")
	if got, want := b.Lines(), []string{"a", "b", "", "c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
