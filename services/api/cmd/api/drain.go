package main

import (
	"net/http"
	"sync/atomic"
	"time"
)

// closeWhileDraining answers every request that starts while draining()
// is true with Connection: close, so that net/http closes the connection
// after the response. A proxy that pools connections (nginx) then lets go
// of them one by one during SHUTDOWN_DELAY, while the replica still
// serves, instead of finding them closed by Shutdown, which would race a
// request sent on one at that moment: nginx retries a GET that meets a
// closed connection, but never a POST it has sent.
//
// http.Server.SetKeepAlivesEnabled(false) would do the same, but it also
// closes the idle connections at once, with that very race.
func closeWhileDraining(next http.Handler, draining func() bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if draining() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// handlers counts the requests whose handlers are running. Closing the
// server after its shutdown timeout closes their connections and, through
// their contexts, tells their handlers to stop; each then writes its log
// line (a 503) once what it waits on returns, a Redis call within
// REDIS_TIMEOUT at the latest. The process waits for that, briefly, so
// that no request it cut off goes unlogged.
type handlers struct{ running atomic.Int64 }

func (h *handlers) track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.running.Add(1)
		defer h.running.Add(-1)
		next.ServeHTTP(w, r)
	})
}

// inFlight is how many handlers run now.
func (h *handlers) inFlight() int64 { return h.running.Load() }

// settle waits until no handler runs or grace has passed, and returns how
// many still run. Only a shutdown calls it, so it polls.
func (h *handlers) settle(grace time.Duration) int64 {
	deadline := time.Now().Add(grace)
	for {
		n := h.inFlight()
		if n == 0 || !time.Now().Before(deadline) {
			return n
		}
		time.Sleep(5 * time.Millisecond)
	}
}
