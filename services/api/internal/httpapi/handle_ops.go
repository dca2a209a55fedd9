package httpapi

import (
	"context"
	_ "embed"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// openAPIDoc is the OpenAPI document of the contract, served as it is.
//
//go:embed openapi.yaml
var openAPIDoc []byte

// readyTimeout bounds the readiness check of /readyz, well under the probe
// timeouts of orchestrators, so that even a Ready that asks a hung store
// gives a prompt 503.
const readyTimeout = 300 * time.Millisecond

// handleHealthz says the process runs; it needs nothing else, so a draining
// replica or one without Redis is still alive.
func handleHealthz() gin.HandlerFunc {
	type response struct {
		Status string `json:"status"`
	}
	return func(c *gin.Context) {
		c.JSON(http.StatusOK, response{Status: "ok"})
	}
}

// handleReadyz says whether this replica should get traffic: not while it
// drains, and not while Redis cannot be reached or refuses writes.
func handleReadyz(d Deps) gin.HandlerFunc {
	type response struct {
		Status string `json:"status"`
	}
	return func(c *gin.Context) {
		if d.Draining() {
			state(c).cause = "draining"
			abortWith(c, errNotReady)
			return
		}
		ctx, cancel := context.WithTimeout(c.Request.Context(), readyTimeout)
		defer cancel()
		if err := d.Ready(ctx); err != nil {
			state(c).cause = err.Error()
			abortWith(c, errNotReady)
			return
		}
		c.JSON(http.StatusOK, response{Status: "ready"})
	}
}

// handleMetrics serves the registry of the replica. nginx does not route it
// to the outside; Prometheus scrapes each replica directly.
func handleMetrics(d Deps) gin.HandlerFunc {
	h := promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
	return gin.WrapH(h)
}

// handleOpenAPI serves the OpenAPI document of the contract.
func handleOpenAPI() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Data(http.StatusOK, "application/yaml", openAPIDoc)
	}
}

func handleNotFound() gin.HandlerFunc {
	return func(c *gin.Context) { abortWith(c, errNotFound) }
}

// handleMethodNotAllowed answers a known path asked with another method.
// gin has set the Allow header already, from its route trees.
func handleMethodNotAllowed() gin.HandlerFunc {
	return func(c *gin.Context) { abortWith(c, errMethodNotAllowed) }
}
