// Command featureless is the reference that make bench measures beside the
// service: a featureless gin + go-redis handler, with one GET of Redis per
// GET /profile and nothing else (no logging, no metrics, no middleware, no
// limits, no request id).
//
// The performance target is stated against it: GET /profile of the full
// service, through the same nginx with the same number of processes,
// should answer at least as many requests a second as a handler that does
// nothing but read Redis. The bench runs three of it behind the
// repository's nginx.conf in the same run as the service, so the two rates
// come from the same machine at the same time. A session is a string key,
// KEY_PREFIX + token, holding the username, which the bench seeds for the
// tokens wrk sends. It uses the versions of gin and go-redis the service
// uses.
//
// Environment: PORT (it listens on 127.0.0.1:PORT), REDIS_ADDR, KEY_PREFIX
// (default "featureless:").
package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"
)

type profile struct {
	Username   string `json:"username"`
	SecretData string `json:"secretData"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "featureless:", err)
		os.Exit(1)
	}
}

func run() error {
	port, addr := os.Getenv("PORT"), os.Getenv("REDIS_ADDR")
	if port == "" || addr == "" {
		return errors.New("PORT and REDIS_ADDR must be set")
	}
	prefix := os.Getenv("KEY_PREFIX")
	if prefix == "" {
		prefix = "featureless:"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	ok := func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }
	r.GET("/healthz", ok)
	r.GET("/readyz", ok)
	r.GET("/profile", func(c *gin.Context) {
		token := c.GetHeader("X-Session-Id")
		if token == "" {
			c.JSON(http.StatusUnauthorized, gin.H{"error": "No session"})
			return
		}
		user, err := rdb.Get(c.Request.Context(), prefix+token).Result()
		switch {
		case errors.Is(err, redis.Nil):
			c.JSON(http.StatusUnauthorized, gin.H{"error": "Invalid session"})
		case err != nil:
			c.JSON(http.StatusServiceUnavailable, gin.H{"error": "Session store unavailable"})
		default:
			c.JSON(http.StatusOK, profile{Username: user, SecretData: "This came from protected route"})
		}
	})
	srv := &http.Server{Addr: "127.0.0.1:" + port, Handler: r, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}
