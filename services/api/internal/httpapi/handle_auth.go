package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"redis-session-app/services/api/internal/metrics"
	"redis-session-app/services/api/internal/session"
)

// limitLabel is the metric label of the limit that refused an attempt: one
// of the limits' names, whatever the limiter says, so that the label's
// values stay few.
func limitLabel(d session.RateDecision) string {
	switch d.Limit {
	case session.LimitUser, session.LimitSessions:
		return d.Limit
	}
	return session.LimitIP
}

// handleRegister creates an account. A request whose body decodeCredentials
// refuses (wrong Content-Type, too large, not a JSON object with exactly a
// string username and a string password) is answered with that error
// without counting against any limit. Every other attempt counts
// against the client IP's limit before the username and password are
// validated and before any password is hashed, so that attempts with
// invalid values cost the client too and a refused one costs the server no
// hashing.
func handleRegister(d Deps) gin.HandlerFunc {
	type response struct {
		Username string `json:"username"`
	}
	return func(c *gin.Context) {
		username, password, err := decodeCredentials(c)
		if err != nil {
			fail(c, d, err)
			return
		}
		// The hash waits for a slot between two store phases, each
		// bounded on its own (storePhase).
		ctx := c.Request.Context()
		pre, cancelPre := storePhase(c, d)
		defer cancelPre()
		dec, err := d.Limiter.AllowRegister(pre, state(c).clientIP)
		if err != nil {
			fail(c, d, err)
			return
		}
		if refused(c, d, dec) {
			return
		}
		if !session.ValidUsername(username) {
			fail(c, d, badRequest(fmt.Sprintf("username must be %d to %d characters of A-Z a-z 0-9 . _ -",
				session.MinUsernameLen, session.MaxUsernameLen)))
			return
		}
		if !session.ValidPassword(password) {
			fail(c, d, badRequest(fmt.Sprintf("password must be %d to %d characters of valid UTF-8",
				session.MinPasswordLen, session.MaxPasswordLen)))
			return
		}
		hash, err := d.Passwords.Hash(ctx, password)
		if err != nil {
			fail(c, d, err)
			return
		}
		post, cancelPost := storePhase(c, d)
		defer cancelPost()
		// No ID: the store makes one, in the shape its keys need.
		if err := d.Users.CreateUser(post, session.User{Username: username, PasswordHash: hash}); err != nil {
			if unavailable(err) {
				d.Limiter.RefundRegister(ctx, state(c).clientIP)
			}
			fail(c, d, err)
			return
		}
		c.JSON(http.StatusCreated, response{Username: username})
	}
}

// handleLogin opens a session. A request whose body decodeCredentials
// refuses is answered with that error without counting against any limit. Every other attempt counts against the client IP's limit and, when
// the username is valid, against that username's limit, before the
// credentials are validated, the user is looked up or any password is
// verified. After that, an unknown user costs a password verification like
// a known one, and every way of failing is the same 401, so that neither the
// answer nor its timing tells whether a username exists.
func handleLogin(d Deps) gin.HandlerFunc {
	logins := d.Metrics.Logins
	return func(c *gin.Context) {
		username, password, err := decodeCredentials(c)
		if err != nil {
			fail(c, d, err)
			return
		}
		// The hash waits for a slot between two store phases, each
		// bounded on its own (storePhase).
		ctx := c.Request.Context()
		pre, cancelPre := storePhase(c, d)
		defer cancelPre()
		st := state(c)

		validName := session.ValidUsername(username)
		limitName := ""
		if validName {
			limitName = session.CanonicalUsername(username)
		}
		dec, err := d.Limiter.AllowLogin(pre, st.clientIP, limitName)
		if err != nil {
			fail(c, d, loginFailure(c, d, err))
			return
		}
		if refused(c, d, dec) {
			logins.WithLabelValues(metrics.LoginRateLimited).Inc()
			return
		}
		if !validName || !session.ValidPassword(password) {
			logins.WithLabelValues(metrics.LoginInvalidCredentials).Inc()
			fail(c, d, errInvalidCredentials)
			return
		}
		// From here on an attempt that fails on the store is answered
		// 503, which changes nothing: what the limits counted goes back.
		failOnStore := func(err error) {
			if unavailable(err) {
				d.Limiter.RefundLogin(ctx, st.clientIP, limitName)
			}
			fail(c, d, loginFailure(c, d, err))
		}

		user, err := d.Users.UserByName(pre, username)
		switch {
		case errors.Is(err, session.ErrNotFound):
			// Same cost as a wrong password; an empty hash never
			// matches.
			user = session.User{}
		case err != nil:
			failOnStore(err)
			return
		}
		ok, err := d.Passwords.Verify(ctx, password, user.PasswordHash)
		if err != nil {
			fail(c, d, loginFailure(c, d, err))
			return
		}
		if !ok || user.ID == "" {
			logins.WithLabelValues(metrics.LoginInvalidCredentials).Inc()
			fail(c, d, errInvalidCredentials)
			return
		}

		post, cancelPost := storePhase(c, d)
		defer cancelPost()
		issued, capped, err := d.Sessions.Create(post, session.NewSession{
			UserID:    user.ID,
			Username:  user.Username,
			UserAgent: session.ClientText(c.Request.UserAgent()),
			IP:        st.clientIP,
		})
		if err != nil {
			failOnStore(err)
			return
		}
		logins.WithLabelValues(metrics.LoginSuccess).Inc()
		d.Metrics.SessionsCreated.Inc()
		if capped > 0 {
			d.Metrics.SessionsRevoked.WithLabelValues(metrics.RevokeCap).Add(float64(capped))
		}
		st.session, st.hasSession = issued.Session, true
		answerIssued(c, d, "Logged in", issued)
	}
}

// answerIssued hands a new token out, as login and refresh do: in the body
// with the session's expiry, and as the sid cookie.
func answerIssued(c *gin.Context, d Deps, msg string, issued session.Issued) {
	type response struct {
		Message   string `json:"message"`
		SessionID string `json:"sessionId"`
		ExpiresAt string `json:"expiresAt"`
	}
	setSessionCookie(c, d, issued.Token, issued.Session.AbsoluteExpiresAt)
	noStore(c)
	c.JSON(http.StatusOK, response{
		Message:   msg,
		SessionID: issued.Token,
		ExpiresAt: formatTime(issued.Session.ExpiresAt),
	})
}

// loginFailure counts a login that failed for another reason than the
// credentials or a limit, and returns err for fail to answer.
func loginFailure(c *gin.Context, d Deps, err error) error {
	switch {
	case errors.Is(c.Request.Context().Err(), context.Canceled):
		// The client hung up (fail answers 499): neither a busy
		// replica nor the store's failure, though the waits it ended
		// wrap those too.
	case errors.Is(err, session.ErrBusy):
		d.Metrics.Logins.WithLabelValues(metrics.LoginBusy).Inc()
	case errors.Is(err, session.ErrUnavailable):
		d.Metrics.Logins.WithLabelValues(metrics.LoginUnavailable).Inc()
	}
	return err
}

// unavailable reports whether err is the store's unavailability, which
// fail answers 503.
func unavailable(err error) bool { return errors.Is(err, session.ErrUnavailable) }

// formatTime writes t as the contract's timestamps: RFC 3339 in UTC.
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// refused answers 429 and counts the rejection when a rate limit refused
// the attempt, and reports whether it did.
func refused(c *gin.Context, d Deps, dec session.RateDecision) bool {
	if dec.Allowed {
		return false
	}
	d.Metrics.RateLimitRejections.WithLabelValues(limitLabel(dec)).Inc()
	fail(c, d, tooManyRequests(dec.RetryAfter))
	return true
}
