// Command api is one replica of the session service: a gin HTTP server that
// keeps users and sessions in Redis. Every replica is identical and
// stateless, so any number of them can run behind a load balancer.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gin-gonic/gin"
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
		fmt.Fprintf(os.Stderr, "api: %v\n", err)
	}
	os.Exit(exitCode(err))
}
