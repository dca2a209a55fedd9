// Package httpapi is the HTTP adapter of the service: it turns the HTTP
// contract (routes, token carriers, JSON bodies, status codes) into calls on
// the session domain and maps the domain's errors back to responses. It
// knows neither Redis nor how passwords are hashed; both come in through
// Deps.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"redis-session-app/services/api/internal/metrics"
)

// NewServer returns the handler of one replica: every route of the contract
// with its middleware. Sessions, Users, Passwords and Limiter are required;
// every other field of d has a working default (no logging, a clock of
// time.Now, metrics on a private registry, always ready, never draining).
//
// NewServer leaves gin's mode, which is process-wide, to the caller. In
// debug mode, gin's default, each server prints a warning and every route
// to stdout, where the JSON log lines go; nothing else in gin depends on the
// mode. The command puts gin in release mode before it starts a server.
func NewServer(d Deps) http.Handler {
	d = d.withDefaults()

	e := gin.New()
	// The contract wants no redirects: /profile/ is a 404.
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	// A known path with another method is a 405 with an Allow header
	// (gin sets Allow from its route trees), not a 404.
	e.HandleMethodNotAllowed = true
	// The client IP is ours to compute (clientip.go): gin's ClientIP
	// believes X-Real-IP and trusts every proxy by default.
	e.ForwardedByClientIP = false
	e.RemoteIPHeaders = nil
	e.TrustedPlatform = ""
	_ = e.SetTrustedProxies(nil) // fails only on an unparsable entry; nil has none

	addRoutes(e, d)
	return e
}

func (d Deps) withDefaults() Deps {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Metrics == nil {
		// Unregistered: counted but never exposed.
		d.Metrics = metrics.New(nil, "", "")
	}
	if d.Gatherer == nil {
		d.Gatherer = prometheus.NewRegistry()
	}
	if d.Ready == nil {
		d.Ready = func(context.Context) error { return nil }
	}
	if d.Draining == nil {
		d.Draining = func() bool { return false }
	}
	return d
}
