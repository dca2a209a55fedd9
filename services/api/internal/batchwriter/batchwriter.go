// Package batchwriter queues what is written to it and hands it to the
// underlying writer from one goroutine, many writes per call. The service's
// log goes through it: one write system call per log line was the largest
// cost of a request that the service adds to its Redis round trip
// (BenchmarkProfileRedis in httpapi; README, "Performance").
//
// What a crash can lose is bounded: a write is queued at most Delay before
// it is handed on, and the queue holds at most Limit bytes; a writer that
// would pass the limit waits for the queue to be written instead of
// dropping anything. Close hands on everything queued, so after a graceful
// shutdown the output is complete.
package batchwriter

import (
	"io"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultDelay = 5 * time.Millisecond
	DefaultLimit = 64 << 10
)

// Options bound what the queue holds.
type Options struct {
	// Delay is the longest a write waits in the queue; DefaultDelay when
	// zero.
	Delay time.Duration
	// Limit is the most bytes the queue holds; a queue past half of it is
	// written at once. DefaultLimit when zero.
	Limit int
}

// Writer is an io.Writer safe for concurrent use. Each Write is handed on
// whole and in order, so the lines of a log handler that writes one line
// per call stay lines.
type Writer struct {
	out   io.Writer
	delay time.Duration
	limit int

	mu     sync.Mutex
	room   *sync.Cond // the queue has been written out
	queue  []byte
	closed bool

	kick   chan struct{} // the queue is no longer empty
	full   chan struct{} // the queue is past half its limit
	done   chan struct{} // Close was called
	exited chan struct{} // the goroutine has written its last batch
	err    error         // the first error of out; owned by the goroutine until exited
}

// New returns a Writer that writes to out, and starts its goroutine. Call
// Close to stop it.
func New(out io.Writer, o Options) *Writer {
	if o.Delay <= 0 {
		o.Delay = DefaultDelay
	}
	if o.Limit <= 0 {
		o.Limit = DefaultLimit
	}
	w := &Writer{
		out:    out,
		delay:  o.Delay,
		limit:  o.Limit,
		kick:   make(chan struct{}, 1),
		full:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	w.room = sync.NewCond(&w.mu)
	go w.run()
	return w
}

// Write queues a copy of p. It never fails while the Writer is open; an
// error of the underlying writer is returned by Close. After Close it
// writes p at once.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for !w.closed && len(w.queue) > 0 && len(w.queue)+len(p) > w.limit {
		signal(w.full)
		w.room.Wait()
	}
	if w.closed {
		return w.out.Write(p)
	}
	if len(w.queue) == 0 {
		signal(w.kick)
	}
	w.queue = append(w.queue, p...)
	if len(w.queue) >= w.limit/2 {
		signal(w.full)
	}
	return len(p), nil
}

// Close writes out what is queued, stops the goroutine and returns the
// first error of the underlying writer. Writes after Close go straight
// through.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.mu.Unlock()
	close(w.done)
	<-w.exited

	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	// Writes that came after the goroutine's last batch.
	if len(w.queue) > 0 {
		if _, err := w.out.Write(w.queue); err != nil && w.err == nil {
			w.err = err
		}
		w.queue = nil
	}
	w.room.Broadcast()
	return w.err
}

// run hands on the queue Delay after it stops being empty, or at once when
// it is half full or the Writer closes.
func (w *Writer) run() {
	defer close(w.exited)
	t := time.NewTimer(w.delay)
	t.Stop()
	var spare []byte
	for {
		select {
		case <-w.kick:
		case <-w.done:
			w.flush(&spare)
			return
		}
		t.Reset(w.delay)
		select {
		case <-t.C:
		case <-w.full:
			t.Stop()
		case <-w.done:
			t.Stop()
			w.flush(&spare)
			return
		}
		w.flush(&spare)
	}
}

// flush swaps the queue for spare and writes what it held. Writers go on
// queueing into the other buffer meanwhile.
func (w *Writer) flush(spare *[]byte) {
	w.mu.Lock()
	batch := w.queue
	w.queue = (*spare)[:0]
	w.mu.Unlock()
	if len(batch) > 0 {
		if _, err := w.out.Write(batch); err != nil && w.err == nil {
			w.err = err
		}
	}
	// A buffer grown by a burst is not kept for ever.
	if cap(batch) > 4*w.limit {
		batch = nil
	}
	*spare = batch
	w.mu.Lock()
	w.room.Broadcast()
	w.mu.Unlock()
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
