package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"redis-session-app/services/api/internal/metrics"
	"redis-session-app/services/api/internal/session"
)

// requestState is what the middleware learns about a request and the
// handlers and the access log read back. One pointer in the gin context
// instead of several keys: one map entry, no boxing of each value.
type requestState struct {
	id       string
	clientIP string
	// token and session are set by requireSession. The token is needed
	// to revoke or refresh the session and is never logged.
	token      string
	session    session.Session
	hasSession bool
	// cause is why the store failed, for the access log of a 503 (or of
	// a listing whose charge failed): the client is told only that the
	// store is unavailable.
	cause string
}

type stateKey struct{}

// state returns the request's state; a zero state when the request did not
// go through startRequest (it always does through NewServer).
func state(c *gin.Context) *requestState {
	if v, ok := c.Get(stateKey{}); ok {
		if st, ok := v.(*requestState); ok {
			return st
		}
	}
	st := &requestState{}
	c.Set(stateKey{}, st)
	return st
}

func requestID(c *gin.Context) string { return state(c).id }

// setInstance names the replica on every response. It is the outermost
// middleware and sets the header before anything else runs, so 404s, 405s,
// 413s and recovered panics carry it too.
func setInstance(id string) gin.HandlerFunc {
	v := []string{id}
	return func(c *gin.Context) {
		c.Writer.Header()["X-Instance"] = v
		c.Next()
	}
}

// maxRequestIDLen bounds a request id taken from the client, so that a
// client cannot make every log line of its requests arbitrarily long.
const maxRequestIDLen = 128

// startRequest gives the request an id and works out its client IP. The id
// comes from X-Request-Id when the client (or nginx) sent a sane one, so a
// request can be followed across hops; otherwise it is made here: a random
// prefix per server and a counter, unique across replicas without a call to
// crypto/rand on every request.
func startRequest(trusted []netip.Prefix) gin.HandlerFunc {
	prefix, err := session.RandomString(6)
	if err != nil {
		// crypto/rand does not fail on supported platforms; a
		// constant prefix still gives ids unique within the replica.
		prefix = "req"
	}
	var n atomic.Uint64
	return func(c *gin.Context) {
		id := c.Request.Header.Get("X-Request-Id")
		if !saneRequestID(id) {
			var buf [48]byte
			b := append(buf[:0], prefix...)
			b = append(b, '-')
			b = strconv.AppendUint(b, n.Add(1), 36)
			id = string(b)
		}
		c.Writer.Header()["X-Request-Id"] = []string{id}
		st := &requestState{
			id:       id,
			clientIP: clientIP(c.Request.RemoteAddr, c.Request.Header.Values("X-Forwarded-For"), trusted),
		}
		c.Set(stateKey{}, st)
		c.Next()
	}
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// unmatchedRoute is the route label and log value of requests that matched
// no route: 404s and 405s. The raw path would let any client create series
// at will, and it is not logged either: a client that puts its token in the
// path (GET /profile/<token>) would put the token in the log.
const unmatchedRoute = "unmatched"

// observe writes the access log line and the request metrics of every
// request, by route template. Probes and /metrics are not counted and are
// logged at debug level only. Nothing of a request's path, query, body,
// headers or token is logged; the session appears by its public id.
func observe(d Deps) gin.HandlerFunc {
	rm := newRequestMetrics(d.Metrics)
	log := d.Logger
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		elapsed := time.Since(start)

		route := c.FullPath()
		method := c.Request.Method
		status := c.Writer.Status()
		if status < http.StatusInternalServerError && session.CutByShutdown(c.Request.Context()) {
			// Its handler was still running when the shutdown closed the
			// connections: whatever it answered did not reach the client
			// (fail answers such requests 503 itself).
			status = http.StatusServiceUnavailable
			state(c).cause = session.ErrShutdownCut.Error()
		}
		quiet := unobserved(route)
		if route == "" {
			route = unmatchedRoute
			method = methodLabel(method)
		}
		if !quiet {
			rm.observe(route, method, status, elapsed)
		}

		level := slog.LevelInfo
		if quiet {
			level = slog.LevelDebug
		}
		ctx := c.Request.Context()
		if !log.Enabled(ctx, level) {
			return
		}
		// The record is handed to the handler as Logger.LogAttrs would,
		// but without the caller's program counter, which LogAttrs takes
		// with runtime.Callers for every line (1.1 % of a replica's CPU
		// under load, perf) and which the JSON handler, without
		// AddSource, never reads; its time is the request's end.
		st := state(c)
		r := slog.NewRecord(start.Add(elapsed), level, "request", 0)
		r.AddAttrs(
			slog.String("request_id", st.id),
			slog.String("method", method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(elapsed)/float64(time.Millisecond)),
			slog.String("client_ip", st.clientIP),
		)
		if st.hasSession {
			r.AddAttrs(slog.String("session", st.session.ID))
		}
		if st.cause != "" {
			r.AddAttrs(slog.String("error", st.cause))
		}
		_ = log.Handler().Handle(ctx, r)
	}
}

// methodLabel keeps the method label of unmatched requests to the methods
// of HTTP: any other token would be a new series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// requestMetrics caches the series of each route, method and code, so that
// a request costs one map lookup under a read lock instead of hashing label
// values into the vectors. The set of keys is small and bounded: route
// templates, HTTP methods and the codes the handlers answer.
type requestMetrics struct {
	m      *metrics.Metrics
	mu     sync.RWMutex
	series map[seriesKey]series
}

type seriesKey struct {
	route, method string
	code          int
}

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newRequestMetrics(m *metrics.Metrics) *requestMetrics {
	return &requestMetrics{m: m, series: make(map[seriesKey]series)}
}

func (rm *requestMetrics) observe(route, method string, code int, elapsed time.Duration) {
	k := seriesKey{route: route, method: method, code: code}
	rm.mu.RLock()
	s, ok := rm.series[k]
	rm.mu.RUnlock()
	if !ok {
		s = rm.add(k)
	}
	s.requests.Inc()
	s.duration.Observe(elapsed.Seconds())
}

func (rm *requestMetrics) add(k seriesKey) series {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if s, ok := rm.series[k]; ok {
		return s
	}
	s := series{
		requests: rm.m.HTTPRequests.WithLabelValues(k.route, k.method, strconv.Itoa(k.code)),
		duration: rm.m.HTTPDuration.WithLabelValues(k.route, k.method),
	}
	rm.series[k] = s
	return s
}

// refuseCrossOrigin refuses, before any handler runs, a browser request
// with an unsafe method that the browser marks as cross-origin
// (Sec-Fetch-Site cross-site or same-site, or an Origin whose host is not
// the request's Host): the sid cookie is SameSite=Lax, which a same-site
// page still gets sent, and a form needs no CORS to POST. The decision is
// net/http's CrossOriginProtection; requests that carry neither header
// (curl, services, the load test) pass.
//
// It calls Check rather than wrapping the router with Handler and a deny
// handler: as gin middleware behind setInstance and startRequest, the
// refusal is answered by abortWith like every other error, with the
// contract's JSON, X-Instance and X-Request-Id, and it is logged and
// counted by route like any other answer.
func refuseCrossOrigin() gin.HandlerFunc {
	cop := http.NewCrossOriginProtection()
	return func(c *gin.Context) {
		if err := cop.Check(c.Request); err != nil {
			abortWith(c, errCrossOrigin)
			return
		}
		c.Next()
	}
}

// recoverPanics turns a panic into 500 {"error":"Internal error"}. The panic
// and its stack go to the log, never to the client.
func recoverPanics(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if r == http.ErrAbortHandler {
				// The handler asked net/http to cut the connection.
				panic(r)
			}
			log.LogAttrs(c.Request.Context(), slog.LevelError, "panic serving request",
				slog.String("request_id", requestID(c)),
				slog.String("route", c.FullPath()),
				slog.Any("panic", r),
				slog.String("stack", string(debug.Stack())),
			)
			if c.Writer.Written() {
				c.Abort()
				return
			}
			// A cookie set before the panic must not go out with
			// the error.
			c.Writer.Header().Del("Set-Cookie")
			abortWith(c, errInternal)
		}()
		c.Next()
	}
}

// budgetStore gives the rest of the chain a context that ends after
// Deps.StoreBudget, which every store call of the request then honours.
func budgetStore(d Deps) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := storePhase(c, d)
		defer cancel()
		c.Request = c.Request.WithContext(ctx)
		c.Next()
	}
}

// storePhase bounds store calls by Deps.StoreBudget: those of a whole
// request (budgetStore), or those of one phase of a login or a
// registration, whose password hash between its phases waits up to its
// own bound for a slot.
func storePhase(c *gin.Context, d Deps) (context.Context, context.CancelFunc) {
	if d.StoreBudget <= 0 {
		return context.WithCancel(c.Request.Context())
	}
	return context.WithTimeout(c.Request.Context(), d.StoreBudget)
}
