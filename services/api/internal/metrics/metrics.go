// Package metrics defines the Prometheus metrics of the service. They are
// made on a registry handed in by the caller, never on the default one, so
// that every test and every server in one process has its own.
package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"redis-session-app/services/api/internal/session"
)

// Values of the result label of api_logins_total.
const (
	LoginSuccess            = "success"
	LoginInvalidCredentials = "invalid_credentials"
	LoginRateLimited        = "rate_limited"
	LoginBusy               = "busy"
	LoginUnavailable        = "unavailable"
)

// Values of the reason label of api_sessions_revoked_total.
const (
	RevokeLogout    = "logout"
	RevokeLogoutAll = "logout_all"
	RevokeRevoke    = "revoke"
	RevokeRefresh   = "refresh"
	RevokeCap       = "cap"
)

// DurationBuckets are the upper bounds, in seconds, of the request duration
// histogram: an authenticated read takes well under a millisecond plus one
// Redis round trip, a login tens of milliseconds of hashing, and anything
// near REDIS_TIMEOUT or the 5 s wait for a hashing slot is a problem to see.
var DurationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// Metrics holds the service's own metrics. The names and labels are part of
// the HTTP contract: dashboards and alerts depend on them.
type Metrics struct {
	// HTTPRequests counts requests by route template, method and status
	// code. Probes and /metrics are not counted.
	HTTPRequests *prometheus.CounterVec
	// HTTPDuration observes request durations by route template and method.
	// It has no code label on purpose, for cardinality: each route and
	// method already costs one series per bucket of DurationBuckets plus
	// +Inf, _sum and _count, and a code label would multiply that by every
	// status a route can answer. The split by code lives in
	// api_http_requests_total, at one series per route, method and code.
	HTTPDuration *prometheus.HistogramVec
	// Logins counts login attempts by result (the Login… constants).
	Logins *prometheus.CounterVec
	// SessionsCreated counts sessions opened by a login.
	SessionsCreated prometheus.Counter
	// SessionsRevoked counts sessions (or, for refresh, tokens) ended, by
	// reason (the Revoke… constants).
	SessionsRevoked *prometheus.CounterVec
	// RateLimitRejections counts requests refused by a rate limit, by limit:
	// session.LimitUser or session.LimitIP for login and register,
	// session.LimitSessions for the listing of sessions.
	RateLimitRejections *prometheus.CounterVec
	// RedisErrors counts Redis commands (and pipelines) that failed; the
	// Redis client increments it from a hook, so that every failure is
	// counted once, whichever code path made the call.
	RedisErrors prometheus.Counter
	// RedisLateScripts counts the scripts that write which Redis ran after
	// their deadline and so refused (they are in RedisErrors too): a Redis
	// slower than three quarters of REDIS_TIMEOUT, or a Redis clock ahead
	// of this replica's.
	RedisLateScripts prometheus.Counter
	// RedisUp is 1 when the replica's last background probe of Redis, a
	// write of a key that expires, succeeded, and 0 when it failed or none
	// has finished yet. The probe runs about every second whether or not
	// requests arrive, so an alert on it fires with no traffic at all.
	RedisUp prometheus.Gauge
	// BuildInfo is always 1; its labels say which build runs.
	BuildInfo *prometheus.GaugeVec
}

// New makes the metrics on reg, together with the Go runtime and process
// collectors. reg may already hold the Go and process collectors; New then
// leaves them as they are. Like promauto, it panics when one of the
// service's own metrics is already registered on reg, which is a
// programming error.
func New(reg prometheus.Registerer, version, revision string) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		HTTPRequests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "api_http_requests_total",
			Help: "HTTP requests served, by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		HTTPDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "api_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route template and method.",
			Buckets: DurationBuckets,
		}, []string{"route", "method"}),
		Logins: f.NewCounterVec(prometheus.CounterOpts{
			Name: "api_logins_total",
			Help: "Login attempts, by result.",
		}, []string{"result"}),
		SessionsCreated: f.NewCounter(prometheus.CounterOpts{
			Name: "api_sessions_created_total",
			Help: "Sessions opened by a login.",
		}),
		SessionsRevoked: f.NewCounterVec(prometheus.CounterOpts{
			Name: "api_sessions_revoked_total",
			Help: "Sessions ended (for refresh: tokens replaced), by reason.",
		}, []string{"reason"}),
		RateLimitRejections: f.NewCounterVec(prometheus.CounterOpts{
			Name: "api_ratelimit_rejections_total",
			Help: "Requests refused by a rate limit, by limit (user and ip: login and register; sessions: session management).",
		}, []string{"limit"}),
		RedisErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "api_redis_errors_total",
			Help: "Redis commands and pipelines that failed.",
		}),
		RedisLateScripts: f.NewCounter(prometheus.CounterOpts{
			Name: "api_redis_late_scripts_total",
			Help: "Scripts that write which Redis ran after their deadline and refused (also in api_redis_errors_total): Redis slow, or its clock ahead of this replica's.",
		}),
		RedisUp: f.NewGauge(prometheus.GaugeOpts{
			Name: "api_redis_up",
			Help: "1 when the last background probe of Redis (a write, about every second) succeeded, else 0.",
		}),
		BuildInfo: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "api_build_info",
			Help: "Always 1; the labels name the build that runs.",
		}, []string{"version", "revision"}),
	}
	// Every label value known in advance gets its series now, at zero,
	// before the first event: a rate() over a series that appears only with
	// its first increment misses that increment, and alerts on absent
	// series are awkward.
	for _, r := range []string{LoginSuccess, LoginInvalidCredentials, LoginRateLimited, LoginBusy, LoginUnavailable} {
		m.Logins.WithLabelValues(r)
	}
	for _, r := range []string{RevokeLogout, RevokeLogoutAll, RevokeRevoke, RevokeRefresh, RevokeCap} {
		m.SessionsRevoked.WithLabelValues(r)
	}
	for _, l := range []string{session.LimitUser, session.LimitIP, session.LimitSessions} {
		m.RateLimitRejections.WithLabelValues(l)
	}
	m.BuildInfo.WithLabelValues(version, revision).Set(1)

	if reg != nil {
		registerOnce(reg, collectors.NewGoCollector())
		registerOnce(reg, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// RegisterInFlight adds api_http_requests_in_flight to reg, read from
// running at each scrape: the requests whose handlers run at that moment
// (the scrape itself included). The server counts them anyway, for its
// shutdown; a gauge of its own would cost two more atomic adds a request.
func RegisterInFlight(reg prometheus.Registerer, running func() int64) {
	promauto.With(reg).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "api_http_requests_in_flight",
		Help: "HTTP requests whose handlers are running, this scrape included.",
	}, func() float64 { return float64(running()) })
}

// registerOnce registers c unless an equal collector is already there.
func registerOnce(reg prometheus.Registerer, c prometheus.Collector) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if err != nil && !errors.As(err, &are) {
		// Only a collector whose descriptors clash with another's gets
		// here; that is a programming error, like promauto's panics.
		panic(err)
	}
}
