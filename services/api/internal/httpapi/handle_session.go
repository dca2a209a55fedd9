package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"redis-session-app/services/api/internal/metrics"
	"redis-session-app/services/api/internal/session"
)

// handleProfile answers the protected route of the original app. It is the
// hot path of the service, so its body is written by hand rather than
// through reflection: a valid username needs no JSON escaping. A username
// of another shape (never written by register) goes through encoding/json.
func handleProfile() gin.HandlerFunc {
	type response struct {
		Username   string `json:"username"`
		SecretData string `json:"secretData"`
	}
	const (
		secret = "This came from protected route"
		head   = `{"username":"`
		tail   = `","secretData":"` + secret + `"}`
	)
	contentType := []string{"application/json; charset=utf-8"}
	return func(c *gin.Context) {
		st := state(c)
		name := st.session.Username
		noStore(c)
		if !session.ValidUsername(name) {
			c.JSON(http.StatusOK, response{Username: name, SecretData: secret})
			return
		}
		b := make([]byte, 0, len(head)+len(name)+len(tail))
		b = append(b, head...)
		b = append(b, name...)
		b = append(b, tail...)
		c.Writer.Header()["Content-Type"] = contentType
		c.Status(http.StatusOK)
		_, _ = c.Writer.Write(b) // a failed write is the client gone; nothing to answer
	}
}

// message is the body of the routes that only say what they did.
type message struct {
	Message string `json:"message"`
}

// handleLogout ends the current session and clears the cookie.
func handleLogout(d Deps) gin.HandlerFunc {
	return func(c *gin.Context) {
		st := state(c)
		if err := d.Sessions.Revoke(c.Request.Context(), st.token); err != nil {
			fail(c, d, asInvalidSession(err))
			return
		}
		d.Metrics.SessionsRevoked.WithLabelValues(metrics.RevokeLogout).Inc()
		clearSessionCookie(c, d)
		c.JSON(http.StatusOK, message{Message: "Logged out"})
	}
}

// handleLogoutAll ends every live session of the user, this one included.
func handleLogoutAll(d Deps) gin.HandlerFunc {
	type response struct {
		Message string `json:"message"`
		Revoked int    `json:"revoked"`
	}
	return func(c *gin.Context) {
		st := state(c)
		n, err := d.Sessions.RevokeAll(c.Request.Context(), st.token)
		if err != nil {
			fail(c, d, asInvalidSession(err))
			return
		}
		d.Metrics.SessionsRevoked.WithLabelValues(metrics.RevokeLogoutAll).Add(float64(n))
		clearSessionCookie(c, d)
		c.JSON(http.StatusOK, response{Message: "Logged out", Revoked: n})
	}
}

// handleListSessions lists the user's live sessions, newest first, as the
// store orders them.
func handleListSessions(d Deps) gin.HandlerFunc {
	type item struct {
		ID         string `json:"id"`
		CreatedAt  string `json:"createdAt"`
		LastSeenAt string `json:"lastSeenAt"`
		ExpiresAt  string `json:"expiresAt"`
		UserAgent  string `json:"userAgent"`
		IP         string `json:"ip"`
		Current    bool   `json:"current"`
	}
	type response struct {
		Sessions []item `json:"sessions"`
	}
	return func(c *gin.Context) {
		st := state(c)
		list, err := d.Sessions.List(c.Request.Context(), st.session.UserID)
		if err != nil {
			// limitSessions counted this listing; a 503 changes nothing.
			if unavailable(err) {
				d.Limiter.RefundSessions(c.Request.Context(), st.session.UserID)
			}
			fail(c, d, err)
			return
		}
		// The listing is served whatever the settlement does: a Redis too
		// slow to take it leaves the user having paid for the largest
		// listing, and the access log line says so.
		if err := d.Limiter.ChargeListing(c.Request.Context(), st.session.UserID, len(list)); err != nil {
			st.cause = err.Error()
		}
		// Never null: an empty list is [].
		items := make([]item, 0, len(list))
		for _, s := range list {
			items = append(items, item{
				ID:         s.ID,
				CreatedAt:  formatTime(s.CreatedAt),
				LastSeenAt: formatTime(s.LastSeenAt),
				ExpiresAt:  formatTime(s.ExpiresAt),
				UserAgent:  s.UserAgent,
				IP:         s.IP,
				Current:    s.ID == st.session.ID,
			})
		}
		noStore(c)
		writeJSON(c, http.StatusOK, response{Sessions: items})
	}
}

// maxSessionIDLen bounds the handle passed to the store; a longer one
// cannot name a session.
const maxSessionIDLen = 128

// handleRevokeSession ends one of the caller's sessions by its public
// handle. A handle that is not one of the caller's live sessions is a 404,
// whether it belongs to someone else or to nobody.
func handleRevokeSession(d Deps) gin.HandlerFunc {
	return func(c *gin.Context) {
		st := state(c)
		id := c.Param("id")
		if id == "" || len(id) > maxSessionIDLen {
			fail(c, d, errNotFound)
			return
		}
		if err := d.Sessions.RevokeByID(c.Request.Context(), st.token, id); err != nil {
			// ErrNotFound is the contract's 404; ErrCallerGone (the
			// caller's own session revoked since its lookup) the 401 it
			// would have got a moment later.
			fail(c, d, err)
			return
		}
		d.Metrics.SessionsRevoked.WithLabelValues(metrics.RevokeRevoke).Inc()
		c.Status(http.StatusNoContent)
	}
}

// handleRefresh gives the session a new token; the old one stops working.
func handleRefresh(d Deps) gin.HandlerFunc {
	return func(c *gin.Context) {
		st := state(c)
		issued, err := d.Sessions.Refresh(c.Request.Context(), st.token)
		if err != nil {
			fail(c, d, asInvalidSession(err))
			return
		}
		d.Metrics.SessionsRevoked.WithLabelValues(metrics.RevokeRefresh).Inc()
		st.token = issued.Token
		st.session = issued.Session
		answerIssued(c, d, "Refreshed", issued)
	}
}
