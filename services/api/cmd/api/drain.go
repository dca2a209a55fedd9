package main

import "net/http"

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
