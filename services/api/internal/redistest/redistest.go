// Package redistest starts real redis-server processes for tests, much as
// net/http/httptest starts real HTTP servers. Tests run against the same
// Redis the service runs against in production, so Lua scripts, expiry and
// connection failures behave as they really do.
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/logbuf"
	"redis-session-app/services/api/internal/poll"
)

// readyTimeout bounds how long Start and Restart wait for the server to
// answer PING.
const readyTimeout = 10 * time.Second

// Server is one redis-server process listening on a loopback port.
type Server struct {
	t       testing.TB
	dir     string
	port    int
	cluster bool
	// master is the address a Sentinel monitors; empty for a data node.
	master string
	// tlsPort, when not zero, is a TLS listener besides the plain port.
	tlsPort int
	// args are further redis-server options (a replica's --replicaof, a
	// cluster node's settings).
	args []string
	// sentinel configures a Sentinel beyond its monitor line; zero is a
	// quorum of one and Sentinel's own defaults.
	sentinel SentinelOptions

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	out  *logbuf.Buffer
}

// Start runs a redis-server on a free loopback port, without persistence,
// and waits until it answers PING. The server is killed when the test ends.
// A machine without redis-server fails the test: silently skipping would
// let a broken store pass CI.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, false)
}

// StartCluster runs a redis-server as a Redis Cluster of one node that
// serves every hash slot, and waits until the cluster is up. It holds a
// store to the cluster rules that matter to a client: every command or
// script must declare keys of one slot only, or Redis refuses it with
// CROSSSLOT. Use it with a cluster client (several addresses, or the same
// address twice, given to redis.NewUniversalClient). Redis holds a new
// cluster node back for about two seconds before it serves, so this start,
// and each Restart, takes that long.
func StartCluster(t testing.TB) *Server {
	t.Helper()
	return start(t, true)
}

// SentinelMasterName is the name under which a Sentinel from StartSentinel
// knows its master.
const SentinelMasterName = "redistest"

// StartSentinel runs a Redis Sentinel (redis-server in sentinel mode) on a
// free loopback port that monitors master under SentinelMasterName, with a
// quorum of one, and waits until it answers PING. It is killed when the
// test ends.
func StartSentinel(t testing.TB, master *Server) *Server {
	t.Helper()
	return startServer(t, &Server{t: t, dir: t.TempDir(), master: master.Addr()})
}

func start(t testing.TB, cluster bool) *Server {
	t.Helper()
	return startServer(t, &Server{t: t, dir: t.TempDir(), cluster: cluster})
}

func startServer(t testing.TB, s *Server) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server not found on PATH (install it with `apt-get install redis-server`): %v", err)
	}
	t.Cleanup(s.Stop)

	// A free port found by listening on :0 can be taken by someone else
	// before redis-server binds it, so try a few ports before giving up.
	var err error
	for range 5 {
		s.port, err = freePort()
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	if s.cluster {
		if _, err := s.do(t, "CLUSTER", "ADDSLOTSRANGE", 0, 16383); err != nil {
			t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
		}
		s.waitClusterOK()
	}
	return s
}

// waitClusterOK polls CLUSTER INFO until the cluster state is ok.
func (s *Server) waitClusterOK() {
	s.t.Helper()
	var info any
	var err error
	ok := poll.Until(readyTimeout, 20*time.Millisecond, func() bool {
		info, err = s.do(s.t, "CLUSTER", "INFO")
		text, _ := info.(string)
		return err == nil && strings.Contains(text, "cluster_state:ok")
	})
	if !ok {
		s.t.Fatalf("cluster on %s not ok within %v: %v %v", s.Addr(), readyTimeout, info, err)
	}
}

// Addr is the host:port the server listens on; it stays the same across
// Stop and Restart.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Stop kills the server, as a crash would, and waits for it to exit.
// Restart uses the same port, but nothing holds it in between: a listener
// that did would accept connections where a crashed Redis refuses them,
// and a socket bound without listening cannot be bound while the port's
// closed connections wait out TIME_WAIT. So another server may take the
// port meanwhile, which Restart then reports instead of using that
// server (waitReady). Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	// SIGKILL ends even a paused process.
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Pause stops the server process with SIGSTOP: connections are still
// accepted by the kernel but nothing answers, as with a hung or partitioned
// Redis. Resume, Stop or the end of the test wakes or ends it.
func (s *Server) Pause() {
	s.t.Helper()
	s.signal(syscall.SIGSTOP)
}

// Resume continues a paused server.
func (s *Server) Resume() {
	s.t.Helper()
	s.signal(syscall.SIGCONT)
}

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatalf("signal %v: redis-server is not running", sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v to redis-server: %v", sig, err)
	}
}

// Restart starts the server again on the same port and waits until it
// answers PING. Nothing was persisted, so it comes back empty.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	// The old process is gone, but the kernel may briefly refuse the port;
	// retry within the ready timeout.
	var err error
	if !poll.Until(readyTimeout, 50*time.Millisecond, func() bool { err = s.start(); return err == nil }) {
		s.t.Fatalf("restarting redis-server on %s: %v", s.Addr(), err)
	}
	if s.cluster {
		// The node kept its slots in nodes.conf.
		s.waitClusterOK()
	}
}

// Client returns a client of the server, closed when the test ends. It
// honours context deadlines, so a test bounds each call with its context.
func (s *Server) Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// CommandStats returns how many times each command has been called since
// the server started or its statistics were reset, keyed by the command
// name as INFO commandstats writes it ("get", "evalsha", "client|setname").
func (s *Server) CommandStats(t testing.TB) map[string]int64 {
	t.Helper()
	info, err := s.do(t, "INFO", "commandstats")
	if err != nil {
		t.Fatalf("INFO commandstats: %v", err)
	}
	text, ok := info.(string)
	if !ok {
		t.Fatalf("INFO commandstats: got %T, want string", info)
	}
	stats, err := ParseCommandStats(text)
	if err != nil {
		t.Fatalf("INFO commandstats: %v", err)
	}
	return stats
}

// LateRefusals returns how many scripts the server has answered with a
// LATE error (scriptdeadline's: run after the caller's deadline) since it
// started or its statistics were reset, from INFO errorstats.
func (s *Server) LateRefusals(t testing.TB) int64 {
	t.Helper()
	info, err := s.do(t, "INFO", "errorstats")
	if err != nil {
		t.Fatalf("INFO errorstats: %v", err)
	}
	text, ok := info.(string)
	if !ok {
		t.Fatalf("INFO errorstats: got %T, want string", info)
	}
	m := lateCount.FindStringSubmatch(text)
	if m == nil {
		return 0
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		t.Fatalf("INFO errorstats: %q: %v", m[0], err)
	}
	return n
}

var lateCount = regexp.MustCompile(`errorstat_LATE:count=(\d+)`)

// ResetStats zeroes the server's command statistics, so that a following
// CommandStats counts only what happened in between.
func (s *Server) ResetStats(t testing.TB) {
	t.Helper()
	if _, err := s.do(t, "CONFIG", "RESETSTAT"); err != nil {
		t.Fatalf("CONFIG RESETSTAT: %v", err)
	}
}

// FlushAll deletes every key on the server.
func (s *Server) FlushAll(t testing.TB) {
	t.Helper()
	if _, err := s.do(t, "FLUSHALL"); err != nil {
		t.Fatalf("FLUSHALL: %v", err)
	}
}

// do runs one command on a connection of its own, so that it neither shows
// up in nor depends on the pools of the clients under test (beyond the
// command itself and its HELLO handshake).
func (s *Server) do(t testing.TB, args ...any) (any, error) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DisableIdentity: true, Protocol: 2})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Do(ctx, args...).Result()
}

// start runs redis-server on s.port and waits until it answers PING or
// exits.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &logbuf.Buffer{}
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--loglevel", "warning",
		// As every deployment sets it (docker-compose.yml, the
		// Kubernetes overlays): session hashes stay compact with a
		// User-Agent of up to 512 bytes, and the memory benchmark
		// measures what production holds.
		"--hash-max-listpack-value", "512",
	}
	if s.cluster {
		args = append(args,
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			// Otherwise CLUSTER SLOTS names the node by an empty host.
			"--cluster-announce-ip", "127.0.0.1",
		)
	}
	if s.tlsPort != 0 {
		args = append(args, s.tlsArgs()...)
	}
	args = append(args, s.args...)
	if s.master != "" {
		// A Sentinel takes its monitor from a file it may rewrite.
		host, port, err := net.SplitHostPort(s.master)
		if err != nil {
			return fmt.Errorf("master address %q: %w", s.master, err)
		}
		conf := filepath.Join(s.dir, "sentinel.conf")
		monitor := s.sentinel.config(host, port)
		if err := os.WriteFile(conf, []byte(monitor), 0o600); err != nil {
			return fmt.Errorf("writing sentinel config: %w", err)
		}
		args = append([]string{conf, "--sentinel"}, args...)
		args = withoutDataOptions(args)
	}
	cmd := exec.Command("redis-server", args...)
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("running redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()

	if err := waitReady(s.Addr(), cmd.Process.Pid, done); err != nil {
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%w; redis-server output:\n%s", err, out.String())
	}
	s.cmd, s.done, s.out = cmd, done, out
	return nil
}

// withoutDataOptions drops the persistence options a Sentinel refuses.
func withoutDataOptions(args []string) []string {
	var kept []string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--save", "--appendonly":
			i++ // and its value
		default:
			kept = append(kept, args[i])
		}
	}
	return kept
}

// waitReady polls PING until it succeeds, the process exits or the ready
// timeout passes. The server that answers must be process pid: a port
// found free can be taken by another test's server before pid binds it,
// and that one would answer PING as well.
func waitReady(addr string, pid int, exited <-chan struct{}) error {
	c := redis.NewClient(&redis.Options{
		Addr:            addr,
		MaxRetries:      -1,
		DialTimeout:     200 * time.Millisecond,
		ReadTimeout:     200 * time.Millisecond,
		WriteTimeout:    200 * time.Millisecond,
		DisableIdentity: true,
		Protocol:        2,
	})
	defer c.Close()
	errExited := errors.New("redis-server exited before answering PING")
	errForeign := fmt.Errorf("another server answers on %s", addr)
	var err error
	ok := poll.Until(readyTimeout, 20*time.Millisecond, func() bool {
		select {
		case <-exited:
			err = errExited
			return true
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		defer cancel()
		if err = c.Ping(ctx).Err(); err != nil {
			return false
		}
		var info string
		if info, err = c.Info(ctx, "server").Result(); err != nil {
			return false
		}
		if m := processID.FindStringSubmatch(info); m == nil || m[1] != strconv.Itoa(pid) {
			err = fmt.Errorf("%w: its INFO server has %q, want process_id:%d", errForeign, processID.FindString(info), pid)
		}
		return true
	})
	switch {
	case errors.Is(err, errExited), errors.Is(err, errForeign):
		return err
	case !ok:
		return fmt.Errorf("no PONG from %s within %v: %w", addr, readyTimeout, err)
	}
	return nil
}

var processID = regexp.MustCompile(`(?m)^process_id:(\d+)\r?$`)

// ParseCommandStats reads the output of INFO commandstats, lines such as
// "cmdstat_get:calls=3,usec=10,usec_per_call=3.33,rejected_calls=0,failed_calls=0",
// into calls by command name, for a test that runs INFO itself (inside a
// MULTI, say, to read it at one instant with a key).
func ParseCommandStats(info string) (map[string]int64, error) {
	stats := make(map[string]int64)
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		name, rest, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		name = strings.TrimPrefix(name, "cmdstat_")
		for field := range strings.SplitSeq(rest, ",") {
			k, v, ok := strings.Cut(field, "=")
			if !ok || k != "calls" {
				continue
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("parsing calls of %s: %w", name, err)
			}
			stats[name] = n
		}
	}
	return stats, sc.Err()
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Strings returns the value of each of keys, "" for a key that does not
// exist, read on a connection of its own, as do does.
func (s *Server) Strings(t testing.TB, keys []string) map[string]string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DisableIdentity: true, Protocol: 2})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(map[string]string, len(keys))
	for _, k := range keys {
		v, err := c.Get(ctx, k).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatalf("GET %s: %v", k, err)
		}
		got[k] = v
	}
	return got
}

// SameFloat reports whether two values of a key that holds a decimal
// number are the same to a thousandth, or both "" (no key): a value
// moved forth and back by floating-point steps, as a rate limit's TAT
// is by a check and its refund, need not come back bit for bit.
func SameFloat(a, b string) bool {
	if a == "" || b == "" {
		return a == b
	}
	x, errA := strconv.ParseFloat(a, 64)
	y, errB := strconv.ParseFloat(b, 64)
	return errA == nil && errB == nil && math.Abs(x-y) < 1e-3
}
