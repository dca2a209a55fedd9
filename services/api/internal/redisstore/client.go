// Package redisstore keeps sessions and users in Redis, behind the
// session.Store and session.UserStore interfaces. It works on one node, a
// Sentinel-managed master or a Redis Cluster: all of a user's session keys
// share one hash slot, and every operation is a single command or a single
// Lua script, so each is atomic on its own. (The one exception is logout-all
// on an index of more than 1,000 members: one script per 1,000.) Every
// script that writes does nothing when Redis runs it after the caller
// stopped waiting (see package scriptdeadline).
//
// Redis never holds a token's secret, only a verifier of it (16 bytes of
// its SHA-256): a copy of the data does not let anyone in. Every key but a
// user record expires by itself, so Redis's own expiry is all that ends a
// session.
package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"runtime"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"redis-session-app/services/api/internal/scriptdeadline"
)

// defaultTimeout is the timeout of each call when ClientOptions leaves it
// zero, so that a zero ClientOptions works. The service always sets it from
// REDIS_TIMEOUT, whose default package config owns. It is the one
// scriptdeadline assumes for a client without a timeout.
const defaultTimeout = scriptdeadline.DefaultTimeout

// minPoolSize is the least number of connections a client keeps open to
// each Redis node it talks to.
const minPoolSize = 100

// ClientOptions says how to reach Redis.
type ClientOptions struct {
	// Addrs lists host:port addresses: one means a single node, several a
	// Redis Cluster, unless MasterName is set.
	Addrs []string
	// MasterName, when set, means Addrs are Sentinels and this names the
	// master they watch.
	MasterName string
	Username   string
	Password   string
	// TLS turns on TLS, verifying the server's certificate.
	TLS bool
	// Timeout is the dial, read and write timeout of each call, and how
	// long a call waits for a free connection; 500 ms when zero.
	Timeout time.Duration
}

// NewClient returns a client for the Redis o describes. It does not connect:
// a replica starts while Redis is down and the first calls fail until it
// comes up.
//
// Calls are not retried. A retry after a timeout doubles the time a caller
// waits during an outage, and the contract wants a 503 within about one
// timeout; connections broken by a Redis restart are found by the pool's
// health check before use, so retries buy little.
//
// A cluster client learns which node serves which slot from CLUSTER SLOTS
// and reloads that map only when a node answers MOVED, ASK or READONLY, or
// when the map is older than its reload interval (60 s). A master that
// dies answers nothing, so until the interval ran out every call for its
// slots went to the dead address, long after its replica had taken over
// (measured: 58 s of 503s). Here a call that fails without an answer from
// Redis also reloads the map, in the background: go-redis runs one reload
// at a time and at most one every 200 ms, so a dead master costs a few
// CLUSTER SLOTS a second per replica until its replica takes over, and the
// first reload after that finds it.
func NewClient(o ClientOptions) redis.UniversalClient {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	opts := &redis.UniversalOptions{
		Addrs:        o.Addrs,
		MasterName:   o.MasterName,
		Username:     o.Username,
		Password:     o.Password,
		DialTimeout:  timeout,
		ReadTimeout:  timeout,
		WriteTimeout: timeout,
		PoolTimeout:  timeout,
		// go-redis's default of 10 connections per CPU is too few when a
		// login storm saturates a small replica: requests then wait for a
		// connection longer than the timeout and a healthy Redis looks
		// down (503 "Session store unavailable" instead of "Server busy").
		// Measured on one CPU with 400 concurrent logins: 245 false
		// outages at 10 connections, none at 100.
		PoolSize:              max(minPoolSize, 10*runtime.GOMAXPROCS(0)),
		ContextTimeoutEnabled: true,
		MaxRetries:            -1, // none: see above
		// Nor in a cluster, whose own loop (on top of MaxRetries) sends a
		// call up to three more times, after a timeout too, so a script
		// that ran but whose answer was lost would run again. A MOVED
		// answer is not followed either: it reloads the slot map, and the
		// call is answered 503 like any other failed one.
		MaxRedirects: -1,
		// One dial attempt per call: the default of five attempts 100 ms
		// apart would make a call during an outage last half a second more.
		DialerRetries: 1,
		// Redis 7.0 (Debian bookworm's) knows neither CLIENT SETINFO nor
		// CLIENT MAINT_NOTIFICATIONS, which go-redis sends on every new
		// connection: each failure would count as a Redis error. Both are
		// of no use to the service (the latter is for Redis Enterprise).
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if o.MasterName != "" {
		// Sentinels usually share the master's credentials in small
		// deployments; without these the Sentinel connection would be
		// unauthenticated.
		opts.SentinelUsername = o.Username
		opts.SentinelPassword = o.Password
	}
	if o.TLS {
		// ServerName is left empty so that each connection verifies the
		// host it dials, which differs per node in a cluster.
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	c := redis.NewUniversalClient(opts)
	if cluster, ok := c.(*redis.ClusterClient); ok {
		// Reload the map of slots to nodes when a call fails without an
		// answer from Redis (refused, timed out, cut off): the node it went
		// to may be gone and its slots served elsewhere. go-redis otherwise
		// reloads it only on MOVED/ASK or once a minute, and a dead master
		// answers neither.
		cluster.AddHook(failureHook{failed: unanswered, on: cluster.ReloadState})
	}
	return c
}

// unanswered tells a failure that Redis did not answer (a network error, a
// timeout, a closed connection) from Redis's own replies, redis.Nil
// included, and from a caller that went away.
func unanswered(err error) bool {
	var reply redis.Error
	return err != nil && !errors.As(err, &reply) && !errors.Is(err, context.Canceled)
}

// NewErrorHook returns a hook that calls onError once for every command, and
// once for every pipeline or transaction, that fails, to count Redis errors. Two failures are not counted
// because they are part of normal work: redis.Nil (a key that does not
// exist) and NOSCRIPT (the first run of a Lua script on a node that has not
// cached it yet, which go-redis answers by sending the script itself).
func NewErrorHook(onError func()) redis.Hook {
	return failureHook{failed: counted, on: func(context.Context) { onError() }}
}

// NewLateHook returns a hook that calls onLate once for every script that
// Redis refused because it ran it after its deadline (see package
// scriptdeadline): Redis slower than the deadline's share of the timeout,
// or its clock ahead of this replica's. Such refusals are errors too, and
// NewErrorHook counts them as well; this count tells them apart.
func NewLateHook(onLate func()) redis.Hook {
	return failureHook{failed: scriptdeadline.IsLate, on: func(context.Context) { onLate() }}
}

// failureHook calls on once for every command, and once for every pipeline
// or transaction, that failed by the measure of failed.
type failureHook struct {
	failed func(error) bool
	on     func(context.Context)
}

// DialHook passes dials through: a failed dial also fails the command that
// needed it, which is seen there, once.
func (h failureHook) DialHook(next redis.DialHook) redis.DialHook {
	return next
}

func (h failureHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if h.failed(err) {
			h.on(ctx)
		}
		return err
	}
}

func (h failureHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		// The pipeline's error is that of its first failed command, which
		// may be a harmless redis.Nil hiding a real failure behind it.
		failed := h.failed(err)
		for _, cmd := range cmds {
			failed = failed || h.failed(cmd.Err())
		}
		if failed {
			h.on(ctx)
		}
		return err
	}
}

// counted tells a failure of Redis from what is not one: a missing key,
// a script not yet cached, and a call given up because its caller left
// (a client that hung up cancels its request's context).
func counted(err error) bool {
	return err != nil && !errors.Is(err, redis.Nil) && !redis.HasErrorPrefix(err, "NOSCRIPT") &&
		!errors.Is(err, context.Canceled)
}
