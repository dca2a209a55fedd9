package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/extra/redisprometheus/v9"
	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/batchwriter"
	"redis-session-app/services/api/internal/config"
	"redis-session-app/services/api/internal/httpapi"
	"redis-session-app/services/api/internal/metrics"
	"redis-session-app/services/api/internal/password"
	"redis-session-app/services/api/internal/ratelimit"
	"redis-session-app/services/api/internal/redisprobe"
	"redis-session-app/services/api/internal/redisstore"
	"redis-session-app/services/api/internal/session"
)

// Set at build time with -ldflags "-X main.version=… -X main.revision=…".
var (
	version  = "dev"
	revision = "unknown"
)

// Exit statuses, from the contract.
const (
	exitOK = 0
	// exitFailure covers a shutdown that had to cut requests off and any
	// error after start-up.
	exitFailure = 1
	// exitConfig means a setting could not be parsed.
	exitConfig = 2
)

// HTTP server limits. Login waits up to 5 s for a hashing slot and then
// hashes, so the write timeout leaves room for that; the idle timeout is
// longer than nginx's upstream keepalive so that nginx, not the replica,
// closes idle connections and never sends on one being closed.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 15 * time.Second
	idleTimeout       = 75 * time.Second
	maxHeaderBytes    = 32 << 10
)

// exitError carries the exit status main should use for an error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// errCutOff is returned when requests were still in flight at the end of
// SHUTDOWN_TIMEOUT and had to be cut off.
var errCutOff = errors.New("shutdown timed out: requests in flight were cut off")

// exitCode maps the error returned by run to the process exit status.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitFailure
}

// run starts one replica and serves until ctx ends, then drains as the
// contract says. It returns nil after a clean shutdown.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	// Settings come from the environment (the contract); the only flag
	// narrows the interface to bind, which tests set to loopback. In a
	// container a replica must listen on every interface.
	fs := flag.NewFlagSet(progName(args), flag.ContinueOnError)
	fs.SetOutput(stderr)
	host := fs.String("host", "", "interface to listen on; empty means all")
	if len(args) > 0 {
		if err := fs.Parse(args[1:]); err != nil {
			return &exitError{code: exitConfig, err: fmt.Errorf("parsing flags: %w", err)}
		}
		// Flag parsing stops at the first argument that is not a flag:
		// "api x -host 127.0.0.1" would listen on every interface.
		if fs.NArg() > 0 {
			return &exitError{code: exitConfig, err: fmt.Errorf("parsing flags: unexpected argument %q (settings come from the environment)", fs.Arg(0))}
		}
	}

	cfg, err := config.Parse(getenv, os.Hostname)
	if err != nil {
		return &exitError{code: exitConfig, err: fmt.Errorf("configuration: %w", err)}
	}

	// Log lines are queued and written a batch at a time: a write system
	// call per access log line cost more than anything else the service
	// adds to a request. A crash loses at most the last few milliseconds
	// of lines (batchwriter.DefaultDelay); the deferred Close runs last and
	// writes everything, so after a graceful shutdown the log is complete.
	logs := batchwriter.New(stdout, batchwriter.Options{})
	defer func() {
		if err := logs.Close(); err != nil {
			fmt.Fprintf(stderr, "writing logs: %v\n", err)
		}
	}()
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: cfg.LogLevel})).
		With("instance", cfg.InstanceID)
	logger.Info("starting", "version", version, "revision", revision, "config", cfg)
	setRedisLogger(logger)

	reg := prometheus.NewRegistry()
	m := metrics.New(reg, version, revision) // with the Go and process collectors

	// NewClient does not contact Redis: a replica that starts while Redis is
	// down starts all the same and reports not ready until it appears.
	client := redisstore.NewClient(redisstore.ClientOptions{
		Addrs:      cfg.RedisAddrs,
		MasterName: cfg.RedisMasterName,
		Username:   cfg.RedisUsername,
		Password:   cfg.RedisPassword,
		TLS:        cfg.RedisTLS,
		Timeout:    cfg.RedisTimeout,
	})
	defer func() {
		if err := client.Close(); err != nil {
			logger.Warn("closing redis client", "err", err)
		}
	}()
	client.AddHook(redisstore.NewErrorHook(m.RedisErrors.Inc))
	client.AddHook(redisstore.NewLateHook(m.RedisLateScripts.Inc))
	if err := reg.Register(redisprometheus.NewCollector("api", "redis", client)); err != nil {
		return fmt.Errorf("registering redis pool collector: %w", err)
	}

	sessions := redisstore.NewSessions(client, redisstore.SessionOptions{
		IdleTimeout: cfg.SessionIdleTimeout,
		MaxLifetime: cfg.SessionMaxLifetime,
		MaxPerUser:  cfg.SessionMaxPerUser,
		Now:         time.Now,
	})
	users := redisstore.NewUsers(client)

	// Hashes run on threads of the lowest priority (see package password),
	// so that under a login storm the kernel runs the request handlers
	// first. A hash still holds one of Go's processors
	// while its thread waits for the kernel, so one processor is kept
	// for the request handlers: one hash at a time fewer than the CPUs
	// the replica may use (GOMAXPROCS, not NumCPU: it follows the
	// container's CPU quota), and a replica of one CPU gets a second
	// processor for its single hash. More hashes at once than CPUs would
	// only queue inside the scheduler.
	procs := runtime.GOMAXPROCS(0)
	slots := max(1, procs-1)
	if procs == 1 {
		runtime.GOMAXPROCS(2)
	}
	hasher, err := password.NewHasher(password.DefaultParams(), slots, 5*time.Second)
	if err != nil {
		return fmt.Errorf("creating password hasher: %w", err)
	}
	logger.Info("password hashing", "slots", slots)
	limiter := ratelimit.New(client, ratelimit.Limits{
		LoginPerUser:    cfg.LoginLimitPerUser,
		LoginPerIP:      cfg.LoginLimitPerIP,
		SessionsPerUser: cfg.SessionsLimitPerUser,
		MaxListed:       cfg.SessionMaxPerUser,
	})

	// The probe alone writes to Redis for readiness; /readyz only reads
	// its last outcome (see package redisprobe for why). A probe gives up
	// when a request would, after REDIS_TIMEOUT. It stops, and its
	// goroutine with it, when run returns, before the client closes.
	probe := redisprobe.New(client, redisprobe.Options{
		Key: "probe:" + cfg.InstanceID, Timeout: cfg.RedisTimeout, Up: m.RedisUp, Logger: logger,
	})
	stopProbe := probe.Start(context.WithoutCancel(ctx))
	defer stopProbe()

	var draining atomic.Bool
	handler := httpapi.NewServer(httpapi.Deps{
		Logger:    logger,
		Sessions:  sessions,
		Users:     users,
		Passwords: hasher,
		Limiter:   limiter,
		// The probe's last outcome: /readyz asks Redis nothing itself.
		Ready:          probe.Ready,
		Draining:       draining.Load,
		Metrics:        m,
		Gatherer:       reg,
		InstanceID:     cfg.InstanceID,
		CookieSecure:   cfg.CookieSecure,
		TrustedProxies: cfg.TrustedProxies,
		Now:            time.Now,
		// The contract's "503 within one second at the default timeout".
		StoreBudget: 2 * cfg.RedisTimeout,
	})

	var running handlers
	metrics.RegisterInFlight(reg, running.inFlight)
	srv := &http.Server{
		Handler:           running.track(closeWhileDraining(handler, draining.Load)),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		// Without this net/http answers "OPTIONS *" itself, with no
		// X-Instance and no JSON body; the router answers it as a 404.
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}

	// Listen before serving so that the address is known (and logged) even
	// for port 0, and so that a port in use is an error at start.
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	logger.Info("listening", "addr", ln.Addr().String())

	return serve(ctx, logger, srv, ln, &draining, &running, cfg.ShutdownDelay, cfg.ShutdownTimeout, 2*cfg.RedisTimeout)
}

// serve serves on ln until ctx ends, then drains: /readyz fails at once (via
// draining) so that the load balancer stops sending new requests, requests
// keep being served for delay, then the listener closes and requests in
// flight get up to timeout to finish. Cutting any off is an error; the
// handlers of those cut off then get up to grace to write their log lines.
func serve(ctx context.Context, logger *slog.Logger, srv *http.Server, ln net.Listener,
	draining *atomic.Bool, running *handlers, delay, timeout, grace time.Duration) error {
	// Every request's context derives from base, which a shutdown that
	// runs out of time cancels with session.ErrShutdownCut.
	base, cutOff := context.WithCancelCause(context.Background())
	defer cutOff(nil)
	srv.BaseContext = func(net.Listener) context.Context { return base }
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err := <-serveErr:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}

	draining.Store(true)
	logger.Info("draining", "delay", delay.String())
	t := time.NewTimer(delay)
	select {
	case <-t.C:
	case err := <-serveErr:
		t.Stop()
		return fmt.Errorf("serving: %w", err)
	}

	logger.Info("shutting down", "timeout", timeout.String())
	// ctx is already done: the shutdown deadline needs a context of its own.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// With no handler running nothing is cut off: Shutdown polls its
		// connections (every 500 ms at last), so one whose request ended
		// just before the deadline, or that never sent a whole request,
		// reads as still busy.
		cut := running.inFlight()
		if cut > 0 {
			// Requests still in flight are the replica's failures (503
			// in their log lines), not clients that hung up.
			cutOff(session.ErrShutdownCut)
		}
		if cerr := srv.Close(); cerr != nil {
			logger.Warn("closing server", "err", cerr)
		}
		if cut == 0 {
			logger.Info("stopped")
			return nil
		}
		unlogged := running.settle(grace)
		logger.Error("shutdown cut requests off", "err", err, "requests", cut, "unlogged", unlogged)
		return &exitError{code: exitFailure, err: fmt.Errorf("%w: %w", errCutOff, err)}
	}
	logger.Info("stopped")
	return nil
}

func progName(args []string) string {
	if len(args) == 0 {
		return "api"
	}
	return args[0]
}

// redisLoggerOnce guards the one logger go-redis has for the whole process.
// Several replicas can run in one process (the tests start several); the
// first one to start sets it, and go-redis's messages from every replica of
// the process carry that replica's instance. It is the only package-level
// state, because go-redis offers no logger per client.
var redisLoggerOnce sync.Once

// setRedisLogger makes go-redis write its own messages through logger, so
// that its dial failures are JSON lines and not plain text on stderr. Only
// the first call in a process has an effect.
func setRedisLogger(logger *slog.Logger) {
	redisLoggerOnce.Do(func() { redis.SetLogger(redisLogger{logger}) })
}

// redisLogger writes go-redis's own messages (dial failures, pool events) as
// structured warnings.
type redisLogger struct{ logger *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.logger.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}
