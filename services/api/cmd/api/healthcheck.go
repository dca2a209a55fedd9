package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"redis-session-app/services/api/internal/config"
)

// healthcheckTimeout bounds one probe, well inside the few seconds a
// container runtime gives its health check command.
const healthcheckTimeout = 2 * time.Second

// healthcheck asks the replica running next to it, on loopback at the PORT
// of the same environment, whether it is ready. The image is FROM scratch,
// with no shell or curl, so a container's health check runs the binary
// itself: `api -healthcheck` exits 0 when GET /readyz answers 200, else 1.
func healthcheck(ctx context.Context, getenv func(string) string) error {
	cfg, err := config.Parse(getenv, os.Hostname)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if cfg.Port == 0 {
		return errors.New("PORT is 0: the replica's port is not known")
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	url := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)) + "/readyz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	// Its own client: one request, no proxy from the environment.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("probing %s: %w", url, err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<10))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("probing %s: got %s, want 200", url, res.Status)
	}
	return nil
}
