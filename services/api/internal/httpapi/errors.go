package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"redis-session-app/services/api/internal/session"
)

// httpError is an answer meant for the client: a status, the message of the
// {"error": …} body, for 429 and 503 a Retry-After in whole seconds, and
// for the 401s of the routes that need a session the WWW-Authenticate
// challenge of RFC 6750.
type httpError struct {
	status     int
	msg        string
	retryAfter int
	challenge  string
}

func (e *httpError) Error() string { return e.msg }

// The errors of the contract, word for word.
var (
	errNoSession          = &httpError{status: http.StatusUnauthorized, msg: "No session", challenge: "Bearer"}
	errInvalidSession     = &httpError{status: http.StatusUnauthorized, msg: "Invalid session", challenge: `Bearer error="invalid_token"`}
	errInvalidCredentials = &httpError{status: http.StatusUnauthorized, msg: "Invalid credentials"}
	errNotFound           = &httpError{status: http.StatusNotFound, msg: "Not found"}
	errMethodNotAllowed   = &httpError{status: http.StatusMethodNotAllowed, msg: "Method not allowed"}
	errCrossOrigin        = &httpError{status: http.StatusForbidden, msg: "Cross-origin request refused"}
	errUsernameTaken      = &httpError{status: http.StatusConflict, msg: "Username taken"}
	errTooLarge           = &httpError{status: http.StatusRequestEntityTooLarge, msg: "Request body too large"}
	errMediaType          = &httpError{status: http.StatusUnsupportedMediaType, msg: "Content-Type must be application/json"}
	errStoreUnavailable   = &httpError{status: http.StatusServiceUnavailable, msg: "Session store unavailable", retryAfter: 1}
	errBusy               = &httpError{status: http.StatusServiceUnavailable, msg: "Server busy", retryAfter: 1}
	errNotReady           = &httpError{status: http.StatusServiceUnavailable, msg: "Not ready"}
	errInternal           = &httpError{status: http.StatusInternalServerError, msg: "Internal error"}

	// errClientGone is what a request whose client hung up is logged and
	// counted with (nginx's 499): nobody reads it, and it is neither the
	// store's failure nor the service's.
	errClientGone = &httpError{status: statusClientClosedRequest, msg: "Client closed request"}

	// errCutOff is what a request that the replica's shutdown cut off is
	// logged and counted with: the replica failed it, not its client. The
	// client gets no answer (its connection is closed).
	errCutOff = &httpError{status: http.StatusServiceUnavailable, msg: "Shutting down"}
)

func badRequest(msg string) *httpError {
	return &httpError{status: http.StatusBadRequest, msg: msg}
}

// tooManyRequests rounds the wait up to whole seconds, at least one: a
// client told "0" would retry at once and be refused again.
func tooManyRequests(wait time.Duration) *httpError {
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return &httpError{status: http.StatusTooManyRequests, msg: "Too many requests", retryAfter: secs}
}

// statusClientClosedRequest is nginx's status for a request whose client
// closed the connection before the answer; net/http has no name for it.
const statusClientClosedRequest = 499

// errorBody is the body of every error response.
type errorBody struct {
	Error string `json:"error"`
}

// fail answers err and stops the handler chain. It is the one place where
// errors become statuses: an *httpError is answered as it is, the domain's
// errors by their meaning, and anything else is a bug, logged here (and
// nowhere else) and answered 500 without detail.
//
// session.ErrNotFound means different things on different routes (an
// invalid session, an unknown user, a foreign session id); handlers that
// mean something else than 404 translate it before calling fail.
func fail(c *gin.Context, d Deps, err error) {
	var he *httpError
	switch {
	case session.CutByShutdown(c.Request.Context()):
		// Whatever failed (a body cut short reads as a bad one), the
		// shutdown did it.
		he = errCutOff
		state(c).cause = err.Error()
	case errors.As(err, &he):
	case errors.Is(c.Request.Context().Err(), context.Canceled):
		// The client hung up, whatever the store then said: go-redis
		// blocked in a read returns its own timeout, not the context's
		// cancellation. (A store budget that ran out is a deadline, and
		// a 503.)
		he = errClientGone
		state(c).cause = err.Error()
	case errors.Is(err, session.ErrUnavailable):
		// Not counted in api_redis_errors_total here: the Redis
		// client counts each failed command where it happens. The
		// cause (a refused dial, a timeout, OOM, READONLY, a script
		// run too late) goes into the access log line, so an operator
		// sees why; the store's errors never carry a token or key.
		he = errStoreUnavailable
		state(c).cause = err.Error()
	case errors.Is(err, session.ErrBusy):
		he = errBusy
	case errors.Is(err, session.ErrUsernameTaken):
		he = errUsernameTaken
	case errors.Is(err, session.ErrCallerGone):
		he = errInvalidSession
	case errors.Is(err, session.ErrNotFound):
		he = errNotFound
	default:
		d.Logger.LogAttrs(c.Request.Context(), slog.LevelError, "request failed",
			slog.String("request_id", requestID(c)),
			slog.String("route", c.FullPath()),
			slog.String("error", err.Error()),
		)
		he = errInternal
	}
	abortWith(c, he)
}

func abortWith(c *gin.Context, he *httpError) {
	if he.retryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(he.retryAfter))
	}
	if he.challenge != "" {
		c.Header("WWW-Authenticate", he.challenge)
	}
	c.AbortWithStatusJSON(he.status, errorBody{Error: he.msg})
}
