package httpapi

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"redis-session-app/services/api/internal/session"
)

// cookieName is the name of the session cookie.
const cookieName = "sid"

// sessionToken returns the token of the first carrier present, in the
// contract's order: X-Session-Id, Authorization: Bearer, cookie sid. An
// empty value, a scheme other than Bearer, a bare "Bearer" and a cookie the
// HTTP library cannot parse all count as absent. Only the first present
// carrier counts, valid or not: a later one cannot rescue an invalid token.
func sessionToken(r *http.Request) (token string, present bool) {
	// Direct map access with the canonical key: Header.Get would
	// canonicalise the key again on every request.
	if v := r.Header["X-Session-Id"]; len(v) > 0 && v[0] != "" {
		return v[0], true
	}
	if v := r.Header["Authorization"]; len(v) > 0 {
		if tok, ok := bearerToken(v[0]); ok {
			return tok, true
		}
	}
	if ck, err := r.Cookie(cookieName); err == nil && ck.Value != "" {
		return ck.Value, true
	}
	return "", false
}

// bearerToken reads "Bearer <token>", the scheme without regard to case.
// RFC 7235 separates the scheme from the token by spaces only, so a tab
// after Bearer leaves one word, which is not the scheme Bearer: the carrier
// counts as absent, like any other scheme, rather than as a token.
func bearerToken(h string) (string, bool) {
	scheme, rest, _ := strings.Cut(strings.TrimLeft(h, " \t"), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok := strings.Trim(rest, " \t")
	return tok, tok != ""
}

// requireSession lets a request through only with a live session, which it
// puts, with its token, in the request's state. A token of the wrong shape
// is refused without asking the store, so it is answered the same during
// a store outage. An outage itself is a 503, never a 401: it must not log
// anyone out.
func requireSession(d Deps) gin.HandlerFunc {
	return func(c *gin.Context) {
		tok, ok := sessionToken(c.Request)
		if !ok {
			abortWith(c, errNoSession)
			return
		}
		if !session.ValidToken(tok) {
			abortWith(c, errInvalidSession)
			return
		}
		s, err := d.Sessions.Lookup(c.Request.Context(), tok)
		if err != nil {
			fail(c, d, asInvalidSession(err))
			return
		}
		st := state(c)
		st.token = tok
		st.session = s
		st.hasSession = true
		c.Next()
	}
}

// limitSessions admits a listing of the user's sessions when the user's
// budget has a unit left, reserving the cost of the largest listing
// (SESSION_MAX_PER_USER sessions); the handler settles it at the
// listing's size. GET /auth/sessions reads up to SESSION_MAX_PER_USER
// sessions and answers with as many, so an account looping on it would
// otherwise take the replica's CPU from everyone else, and charging less
// up front would let listings sent at once all pass before any paid. It
// runs after requireSession:
// only a live session spends its user's budget, and a missing or invalid
// token is a 401 that touches no limit. Over the limit the answer is
// login's 429; when the limiter cannot reach Redis, the store's 503.
//
// Revocations are not limited: the budget is the user's, so a thief
// looping on a stolen token could otherwise spend it and keep the owner
// from revoking that very token (DELETE /auth/sessions/{id}, POST
// /auth/logout-all, POST /auth/logout). Their work is bounded and small:
// a few commands, logout-all at most the cap's sessions once, after which
// there is nothing left to revoke. GET /profile and POST /auth/refresh cost
// a lookup and at most one write of one session, about what a refusal by
// this limit costs anyway.
func limitSessions(d Deps) gin.HandlerFunc {
	return func(c *gin.Context) {
		dec, err := d.Limiter.AllowSessions(c.Request.Context(), state(c).session.UserID)
		if err != nil {
			fail(c, d, err)
			return
		}
		if refused(c, d, dec) {
			return
		}
		c.Next()
	}
}

// asInvalidSession reads ErrNotFound on a token as an invalid session: it
// was revoked, expired or never existed.
func asInvalidSession(err error) error {
	if errors.Is(err, session.ErrNotFound) {
		return errInvalidSession
	}
	return err
}

// setSessionCookie hands the token out as the sid cookie, living until the
// session's absolute end (no later use can extend it). Max-Age is rounded
// up to whole seconds: rounded down, a refresh in the last second of the
// lifetime would send Max-Age=0 and delete a cookie whose token still
// works. The session is live when this is called, so the cookie lives at
// least a second; the store, not the cookie, ends the session.
func setSessionCookie(c *gin.Context, d Deps, token string, absoluteEnd time.Time) {
	left := absoluteEnd.Sub(d.Now())
	maxAge := int(left / time.Second)
	if left%time.Second > 0 {
		maxAge++
	}
	if maxAge < 1 {
		maxAge = 1
	}
	writeSessionCookie(c, d, token, maxAge)
}

// noStore keeps the response out of every cache, the browser's included:
// it carries a token or session data (RFC 9111, section 5.2.2.5).
func noStore(c *gin.Context) {
	c.Writer.Header()["Cache-Control"] = []string{"no-store"}
}

// clearSessionCookie deletes the sid cookie (Max-Age=0).
func clearSessionCookie(c *gin.Context, d Deps) {
	writeSessionCookie(c, d, "", -1) // net/http writes MaxAge < 0 as Max-Age=0
}

// writeSessionCookie sets the sid cookie with the attributes of the
// contract, the same whether it hands a token out or clears it.
func writeSessionCookie(c *gin.Context, d Deps, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name:     cookieName,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   d.CookieSecure,
		SameSite: http.SameSiteLaxMode,
	})
}
