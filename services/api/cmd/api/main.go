// Command api is one replica of the session service: a gin HTTP server that
// keeps users and sessions in Redis. Every replica is identical and
// stateless, so any number of them can run behind a load balancer.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/gin-gonic/gin"

	"redis-session-app/services/api/internal/config"
)

func main() {
	// The container's health check: probe this replica's /readyz and exit.
	if len(os.Args) == 2 && os.Args[1] == "-healthcheck" {
		if err := healthcheck(context.Background(), os.Getenv); err != nil {
			fmt.Fprintf(os.Stderr, "api: healthcheck: %v\n", err)
			os.Exit(exitFailure)
		}
		os.Exit(exitOK)
	}

	// gin's mode is process-wide. In debug mode, its default, it prints a
	// warning and every route to stdout, where the JSON log lines go; an
	// explicit GIN_MODE of release or test is left alone.
	if gin.Mode() == gin.DebugMode {
		gin.SetMode(gin.ReleaseMode)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// Once draining has begun, a second signal kills the process the
		// default way instead of being swallowed.
		<-ctx.Done()
		stop()
	}()

	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		logExit(os.Stderr, os.Getenv, os.Hostname, err)
	}
	os.Exit(exitCode(err))
}

// logExit writes why the replica stops as one JSON line, like every other
// line it writes, so that a log pipeline that parses the container's
// output sees a failed start (a bad setting, a port in use) too. The
// configuration may be what failed, so the instance is INSTANCE_ID or
// else the hostname, as read, unchecked (JSON escapes whatever it holds).
func logExit(w io.Writer, getenv func(string) string, hostname func() (string, error), err error) {
	instance := getenv(config.EnvInstanceID)
	if instance == "" {
		instance, _ = hostname()
	}
	slog.New(slog.NewJSONHandler(w, nil)).Error("exiting", "instance", instance, "code", exitCode(err), "err", err.Error())
}
