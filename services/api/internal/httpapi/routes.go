package httpapi

import (
	"github.com/gin-gonic/gin"
)

// addRoutes lists every route of the contract and its middleware.
//
// Global middleware, outermost first:
//   - setInstance: X-Instance on every response, 404, 405 and panics included
//   - startRequest: X-Request-Id taken from the client when sane, else made; the client IP
//   - observe: access log and request metrics by route template
//   - recoverPanics: a panic becomes 500 {"error":"Internal error"}
//   - refuseCrossOrigin: a browser's cross-origin POST or DELETE is a 403
//     before anything else is done, 404s and 405s included
//
// The routes that take no body read it first, if one was sent
// (readIgnoredBody). requireSession guards the routes that need a session, and limitSessions,
// after it, the listing of a user's sessions. budgetStore bounds the store
// calls of the routes that make several (see Deps.StoreBudget).
func addRoutes(e *gin.Engine, d Deps) {
	e.Use(
		setInstance(d.InstanceID),
		startRequest(d.TrustedProxies),
		observe(d),
		recoverPanics(d.Logger),
		refuseCrossOrigin(),
	)
	e.NoRoute(handleNotFound())
	e.NoMethod(handleMethodNotAllowed())

	e.POST("/auth/register", handleRegister(d))
	e.POST("/auth/login", handleLogin(d))

	e.GET("/profile", readIgnoredBody(d), requireSession(d), handleProfile())
	auth := e.Group("", readIgnoredBody(d), budgetStore(d), requireSession(d))
	auth.POST("/auth/logout", handleLogout(d))
	auth.POST("/auth/refresh", handleRefresh(d))

	auth.POST("/auth/logout-all", handleLogoutAll(d))
	auth.DELETE("/auth/sessions/:id", handleRevokeSession(d))
	auth.GET("/auth/sessions", limitSessions(d), handleListSessions(d))

	e.GET("/healthz", handleHealthz())
	e.GET("/readyz", handleReadyz(d))
	e.GET("/metrics", handleMetrics(d))
	e.GET("/openapi.yaml", handleOpenAPI())
}

// unobserved are the routes left out of the request metrics and logged only
// at debug level: probes and scrapes arrive every few seconds and would
// drown the traffic they are meant to watch.
func unobserved(route string) bool {
	return route == "/healthz" || route == "/readyz" || route == "/metrics"
}
