package systemtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
)

// TestSystem runs every case against one stack; each case makes its own
// users and leaves the stack as it found it (all containers running, on
// their networks), so any case runs alone with -run TestSystem/<Case>.
func TestSystem(t *testing.T) {
	s := startStack(t)
	for _, tc := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"Topology", s.testTopology},
		{"CrossReplicaLogin", s.testCrossReplicaLogin},
		{"RoundRobinThroughNginx", s.testRoundRobinThroughNginx},
		{"ReplicaRestartKeepsSession", s.testReplicaRestartKeepsSession},
		{"RevocationIsGlobal", s.testRevocationIsGlobal},
		{"ExpiryEverywhere", s.testExpiryEverywhere},
		{"RedisRestartAndOutage", s.testRedisRestartAndOutage},
		{"ReplicaStartsBeforeRedis", s.testReplicaStartsBeforeRedis},
		{"ZeroFailuresUnderFaults", s.testZeroFailuresUnderFaults},
		{"Partitions", s.testPartitions},
		{"UsersAreIsolated", s.testUsersAreIsolated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Whatever a case did, or failed to undo, the next one finds
			// the stack as startStack left it...
			t.Cleanup(func() { s.heal(t) })
			// ...after the logs at the moment it failed are saved.
			t.Cleanup(func() {
				if t.Failed() {
					s.saveLogs(t, s.all()...)
				}
			})
			tc.run(t)
		})
	}
}

// heal starts whatever container is stopped, joins each to the networks
// it lost, and waits until nginx passes requests to every replica again.
func (s *stack) heal(t *testing.T) {
	t.Helper()
	want := map[*node][]*testcontainers.DockerNetwork{s.redis: {s.data}, s.nginx: {s.edge}}
	for _, r := range s.replicas {
		want[r] = []*testcontainers.DockerNetwork{s.edge, s.data}
	}
	for _, n := range s.all() {
		info := inspect(t, n)
		for _, nw := range want[n] {
			if _, ok := info.NetworkSettings.Networks[nw.Name]; !ok {
				s.reconnect(t, n, nw)
			}
		}
		if !info.State.Running {
			start(t, n)
		}
	}
	for _, r := range s.replicas {
		eventually(t, 15*time.Second, "nginx passing requests to "+r.name, func() error {
			res, err := s.nginx.api.do(context.Background(), http.MethodGet, "/readyz", "", nil)
			if err != nil {
				return err
			}
			if res.status != http.StatusOK || res.instance() != r.name {
				return fmt.Errorf("got %v", res)
			}
			return nil
		})
	}
}

// testTopology checks what the other cases take for granted: who is on
// which network, fixed addresses, ports on loopback only, nginx.conf as
// it is in the repo, and that nginx has no way to Redis.
func (s *stack) testTopology(t *testing.T) {
	want := map[string][]string{"nginx": {s.edge.Name}, "redis": {s.data.Name}}
	for _, r := range s.replicas {
		want[r.name] = []string{s.edge.Name, s.data.Name}
	}
	for _, n := range s.all() {
		info := inspect(t, n)
		var got []string
		for name := range info.NetworkSettings.Networks {
			got = append(got, name)
		}
		slices.Sort(got)
		slices.Sort(want[n.name])
		if !slices.Equal(got, want[n.name]) {
			t.Errorf("%s is on networks %v, want %v", n.name, got, want[n.name])
		}
		if n.ip.IsValid() {
			if got := info.NetworkSettings.Networks[s.edge.Name].IPAddress; got != n.ip {
				t.Errorf("%s has address %v on edge, want %v", n.name, got, n.ip)
			}
		}
		for port, bindings := range info.NetworkSettings.Ports {
			for _, b := range bindings {
				if b.HostIP.String() != "127.0.0.1" {
					t.Errorf("%s publishes %v on %v, want 127.0.0.1 only", n.name, port, b.HostIP)
				}
			}
		}
	}
	for _, r := range s.replicas {
		if aliases := inspect(t, r).NetworkSettings.Networks[s.edge.Name].Aliases; !slices.Contains(aliases, replicaAlias) {
			t.Errorf("%s has aliases %v on edge, want %s among them", r.name, aliases, replicaAlias)
		}
	}

	repoConf, err := os.ReadFile(filepath.Join("..", "..", "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := s.nginx.ctr.CopyFileFromContainer(context.Background(), "/etc/nginx/nginx.conf")
	if err != nil {
		t.Fatalf("reading nginx.conf from nginx: %v", err)
	}
	runConf, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(runConf, repoConf) {
		t.Errorf("nginx runs a configuration that differs from the repo's nginx.conf")
	}

	// bash's /dev/tcp opens a TCP connection from inside nginx. The first
	// probe shows the probe works; the others that Redis is out of reach,
	// by name and by address.
	redisIP := inspect(t, s.redis).NetworkSettings.Networks[s.data.Name].IPAddress.String()
	probes := []struct {
		target    string
		reachable bool
	}{
		{replicaAlias + "/3000", true},
		{redisAlias + "/6379", false},
		{redisIP + "/6379", false},
	}
	for _, p := range probes {
		code, out := exec(t, s.nginx, "timeout", "3", "bash", "-c", "exec 3<>/dev/tcp/"+p.target)
		if got := code == 0; got != p.reachable {
			t.Errorf("nginx connecting to %s: reachable %v, want %v (exit %d: %s)", p.target, got, p.reachable, code, out)
		}
	}
}

// testCrossReplicaLogin: a session made on one replica is the same
// session on every other.
func (s *stack) testCrossReplicaLogin(t *testing.T) {
	api1, api2, api3 := s.replicas[0].api, s.replicas[1].api, s.replicas[2].api
	u := newUser(t, "cross")
	api1.register(t, u)
	token := api1.login(t, u)

	api2.profile(t, token, u.Username)
	api3.profile(t, token, u.Username)

	sessions := api3.sessions(t, token)
	if len(sessions) != 1 || !sessions[0].Current {
		t.Fatalf("GET /auth/sessions on api3: got %+v, want the one session, current", sessions)
	}
}

// testRoundRobinThroughNginx: nginx spreads requests over all replicas.
func (s *stack) testRoundRobinThroughNginx(t *testing.T) {
	u := newUser(t, "rr")
	s.nginx.api.register(t, u)
	token := s.nginx.api.login(t, u)

	served := map[string]int{}
	for range 30 {
		r := s.nginx.api.call(t, http.MethodGet, "/profile", token, nil)
		if err := profileOf(r, u.Username); err != nil {
			t.Fatal(err)
		}
		served[r.instance()]++
	}
	t.Logf("30 requests through nginx answered by %v", served)
	for _, r := range s.replicas {
		if served[r.name] < 8 {
			t.Errorf("%s served %d of 30 requests, want at least 8 (all: %v)", r.name, served[r.name], served)
		}
	}
}

// testReplicaRestartKeepsSession: a replica holds no session; restarting
// it, or all of them, loses none.
func (s *stack) testReplicaRestartKeepsSession(t *testing.T) {
	u := newUser(t, "restart")
	s.nginx.api.register(t, u)
	token := s.nginx.api.login(t, u)

	api2 := s.replicas[1]
	stop(t, api2)
	start(t, api2)
	api2.api.profile(t, token, u.Username)
	s.servedThroughNginxBy(t, api2, token, u.Username)

	restartAll(t, s.replicas...)
	for _, r := range s.replicas {
		r.api.profile(t, token, u.Username)
	}
	for _, r := range s.replicas {
		s.servedThroughNginxBy(t, r, token, u.Username)
	}
}

// servedThroughNginxBy waits until nginx has passed the user's /profile
// to the replica r (so nginx still knows it, at its address); a 401 on
// the way is a lost session and fails at once.
func (s *stack) servedThroughNginxBy(t *testing.T, r *node, token, username string) {
	t.Helper()
	// nginx may hold a replica it saw fail as down for fail_timeout (10 s).
	eventually(t, 15*time.Second, "nginx passing a request to "+r.name, func() error {
		res, err := s.nginx.api.do(context.Background(), http.MethodGet, "/profile", token, nil)
		if err != nil {
			return err
		}
		if res.status == http.StatusUnauthorized {
			t.Fatalf("through nginx: got %v: the session is lost", res)
		}
		if err := profileOf(res, username); err != nil {
			return err
		}
		if res.instance() != r.name {
			return fmt.Errorf("answered by %s", res.instance())
		}
		return nil
	})
}

// testRevocationIsGlobal: every way of ending a session ends it on every
// replica at once; there is no cache to wait for.
func (s *stack) testRevocationIsGlobal(t *testing.T) {
	api1, api2, api3 := s.replicas[0].api, s.replicas[1].api, s.replicas[2].api
	everywhere := []*client{api1, api2, api3, s.nginx.api}
	u := newUser(t, "revoke")
	api1.register(t, u)

	t.Run("Logout", func(t *testing.T) {
		token := api1.login(t, u)
		api3.profile(t, token, u.Username)
		if r := api3.call(t, http.MethodPost, "/auth/logout", token, nil); r.status != http.StatusOK {
			t.Fatalf("logout on api3: got %v, want 200", r)
		}
		for _, c := range everywhere {
			c.rejected(t, token)
		}
	})
	t.Run("LogoutAll", func(t *testing.T) {
		first, second := api1.login(t, u), api2.login(t, u)
		r := api3.call(t, http.MethodPost, "/auth/logout-all", first, nil)
		if r.status != http.StatusOK {
			t.Fatalf("logout-all on api3: got %v, want 200", r)
		}
		for _, c := range everywhere {
			c.rejected(t, first)
			c.rejected(t, second)
		}
	})
	t.Run("RevokeByHandle", func(t *testing.T) {
		keep, drop := api1.login(t, u), api2.login(t, u)
		var handle string
		for _, sess := range api3.sessions(t, keep) {
			if !sess.Current {
				handle = sess.ID
			}
		}
		if handle == "" {
			t.Fatal("GET /auth/sessions on api3 lists no other session")
		}
		if r := api3.call(t, http.MethodDelete, "/auth/sessions/"+handle, keep, nil); r.status != http.StatusNoContent {
			t.Fatalf("DELETE /auth/sessions/{id} on api3: got %v, want 204", r)
		}
		for _, c := range everywhere {
			c.rejected(t, drop)
			c.profile(t, keep, u.Username)
		}
	})
	t.Run("Refresh", func(t *testing.T) {
		old := api1.login(t, u)
		r := api3.call(t, http.MethodPost, "/auth/refresh", old, nil)
		if r.status != http.StatusOK {
			t.Fatalf("refresh on api3: got %v, want 200", r)
		}
		renewed := tokenOf(t, r)
		for _, c := range everywhere {
			c.rejected(t, old)
			c.profile(t, renewed, u.Username)
		}
	})
}

// testExpiryEverywhere: lifetimes are Redis's, not a replica's: with short
// timeouts an idle session dies on every replica, and a busy one slides
// but still ends at its absolute end. Three replicas of their own carry
// the short timeouts; they share the stack's Redis.
func (s *stack) testExpiryEverywhere(t *testing.T) {
	const idle, lifetime = 3 * time.Second, 8 * time.Second
	env := map[string]string{
		"SESSION_IDLE_TIMEOUT": idle.String(),
		"SESSION_MAX_LIFETIME": lifetime.String(),
	}
	reps := s.startReplicas(t,
		replicaSpec{name: "exp1", host: firstExtraHost, env: env},
		replicaSpec{name: "exp2", host: firstExtraHost + 1, env: env},
		replicaSpec{name: "exp3", host: firstExtraHost + 2, env: env},
	)
	u := newUser(t, "expiry")
	reps[0].api.register(t, u)

	t.Run("Idle", func(t *testing.T) {
		token := reps[0].api.login(t, u)
		for _, r := range reps {
			r.api.profile(t, token, u.Username)
		}
		lastUse := time.Now()
		// Polling would use the session and keep it alive, so this waits
		// out the idle timeout (plus Redis's expiry jitter) untouched.
		time.Sleep(time.Until(lastUse.Add(idle + time.Second)))
		for _, r := range reps {
			r.api.rejected(t, token)
		}
	})
	t.Run("Busy", func(t *testing.T) {
		began := time.Now()
		login := reps[0].api.call(t, http.MethodPost, "/auth/login", "", u)
		if login.status != http.StatusOK {
			t.Fatalf("login %s via %s: got %v, want 200", u.Username, reps[0].api.name, login)
		}
		token := tokenOf(t, login)
		// The absolute end as the login answer has it, not as the test's
		// clock would guess it: under load a login (argon2) and the
		// requests take long enough to shift any guess. expiresAt is the
		// login plus the idle timeout, in whole seconds, so the session
		// ends within the second from end.
		end := expiresAtOf(t, login).Add(lifetime - idle)
		var lastOK, lastOKSent, died time.Time
		for i := 0; died.IsZero() && time.Since(began) < lifetime+3*time.Second; i++ {
			c := reps[i%len(reps)].api
			sent := time.Now()
			r := c.call(t, http.MethodGet, "/profile", token, nil)
			switch {
			case profileOf(r, u.Username) == nil:
				lastOK, lastOKSent = time.Now(), sent
			case r.status == http.StatusUnauthorized && r.errorMessage() == "Invalid session":
				died = time.Now()
			default:
				t.Fatalf("GET /profile via %s: got %v, want 200 or 401 Invalid session", c.name, r)
			}
			time.Sleep(300 * time.Millisecond)
		}
		t.Logf("used every 300 ms: last served a request sent %v after the absolute end, refused from %v after it",
			lastOKSent.Sub(end).Round(time.Millisecond), died.Sub(end).Round(time.Millisecond))
		if lastOK.Sub(began) < idle+time.Second {
			t.Errorf("a session in use died %v after login, before its idle timeout (%v) could have slid", lastOK.Sub(began), idle)
		}
		if died.IsZero() {
			t.Fatalf("a session in use outlived its absolute lifetime (%v) by 3 s", lifetime)
		}
		// A refusal is answered before it arrives here, and a request
		// is served after it was sent: bounds that a slow request only
		// loosens, never breaks. The half second is for the clocks of
		// the replicas and Redis, which are the host's.
		if d := end.Sub(died); d > 500*time.Millisecond {
			t.Errorf("a session in use was refused %v before its absolute end (lifetime %v)", d, lifetime)
		}
		if d := lastOKSent.Sub(end.Add(time.Second)); d > 500*time.Millisecond {
			t.Errorf("a session in use served a request sent %v after its absolute end (lifetime %v)", d, lifetime)
		}
		for _, r := range reps {
			r.api.rejected(t, token)
		}
	})
}

// testRedisRestartAndOutage: sessions live in Redis's AOF, a Redis outage
// is 503 (never a logout, never a crash), and the replicas heal by
// themselves.
func (s *stack) testRedisRestartAndOutage(t *testing.T) {
	u := newUser(t, "redis")
	api1, api2 := s.replicas[0].api, s.replicas[1].api
	api1.register(t, u)
	token := api1.login(t, u)
	before := s.replicaStarts(t)

	t.Run("Restart", func(t *testing.T) {
		stop(t, s.redis)
		start(t, s.redis)
		s.eventuallyServedEverywhere(t, token, u.Username)
	})
	t.Run("Kill", func(t *testing.T) {
		// Made just before the kill: an AOF that lost its last writes
		// would lose this session first.
		fresh := api2.login(t, u)
		s.waitAOFWritten(t)
		s.kill(t, s.redis)
		start(t, s.redis)
		s.eventuallyServedEverywhere(t, token, u.Username)
		s.eventuallyServedEverywhere(t, fresh, u.Username)
	})
	t.Run("Outage", func(t *testing.T) {
		stop(t, s.redis)
		for _, c := range s.replicaClients() {
			c.eventuallyNotReady(t)
		}
		// A few rounds: an outage must stay 503, never turn into a 401.
		for range 3 {
			for _, c := range append(s.replicaClients(), s.nginx.api) {
				r := c.call(t, http.MethodGet, "/profile", token, nil)
				if r.status != http.StatusServiceUnavailable || r.errorMessage() != "Session store unavailable" || r.header.Get("Retry-After") != "1" {
					t.Errorf("GET /profile via %s while Redis is down: got %v (Retry-After %q), want 503 Session store unavailable, Retry-After 1", c.name, r, r.header.Get("Retry-After"))
				}
				if r.elapsed > time.Second {
					t.Errorf("GET /profile via %s while Redis is down took %v, want at most 1 s (REDIS_TIMEOUT 500ms)", c.name, r.elapsed)
				}
			}
			for _, c := range s.replicaClients() {
				if r := c.ready(t); r.status != http.StatusServiceUnavailable {
					t.Errorf("GET /readyz via %s while Redis is down: got %v, want 503", c.name, r)
				}
			}
			time.Sleep(300 * time.Millisecond)
		}
		start(t, s.redis)
		s.eventuallyServedEverywhere(t, token, u.Username)
	})

	if after := s.replicaStarts(t); !slices.Equal(after, before) {
		t.Errorf("replicas' (start time, restart count) went from %v to %v: a replica restarted", before, after)
	}
}

var (
	aofEnabled     = regexp.MustCompile(`(?m)^aof_enabled:1\r?$`)
	aofBufferEmpty = regexp.MustCompile(`(?m)^aof_buffer_length:0\r?$`)
)

// waitAOFWritten waits until Redis has written everything it acknowledged
// to its AOF, that is handed it to the kernel, where a SIGKILL of Redis
// cannot take it back. With appendfsync everysec Redis 7.0 postpones that
// write for up to 2 s while a background fsync is still running, yet sends
// its replies all the same: a kill in that window loses acknowledged
// writes (README, System test suite). Kill is about the AOF being
// replayed, not about that window, so it waits it out.
func (s *stack) waitAOFWritten(t *testing.T) {
	t.Helper()
	eventually(t, 10*time.Second, "Redis writing its AOF buffer", func() error {
		code, out := exec(t, s.redis, "redis-cli", "info", "persistence")
		if code != 0 {
			return fmt.Errorf("redis-cli info persistence: exit %d: %s", code, out)
		}
		if !aofEnabled.MatchString(out) {
			t.Fatalf("redis-cli info persistence: no aof_enabled:1 in %q", out)
		}
		if !aofBufferEmpty.MatchString(out) {
			return fmt.Errorf("the AOF buffer is not written yet: %q", out)
		}
		return nil
	})
}

// replicaStarts is each replica's start time and restart count.
func (s *stack) replicaStarts(t *testing.T) []string {
	t.Helper()
	var starts []string
	for _, r := range s.replicas {
		info := inspect(t, r)
		starts = append(starts, fmt.Sprintf("%s %s #%d", r.name, info.State.StartedAt, info.RestartCount))
	}
	return starts
}

func (s *stack) replicaClients() []*client {
	var cs []*client
	for _, r := range s.replicas {
		cs = append(cs, r.api)
	}
	return cs
}

// eventuallyServedEverywhere waits until every replica serves the
// session again; 503s on the way are the contract, a 401 fails at once.
func (s *stack) eventuallyServedEverywhere(t *testing.T, token, username string) {
	t.Helper()
	for _, c := range s.replicaClients() {
		eventually(t, 10*time.Second, c.name+" serving the session", func() error {
			r := c.call(t, http.MethodGet, "/profile", token, nil)
			if r.status == http.StatusUnauthorized || r.status >= 500 && r.status != http.StatusServiceUnavailable {
				t.Fatalf("GET /profile via %s: got %v: never 401 or 500 for a live session", c.name, r)
			}
			return profileOf(r, username)
		})
	}
}

// testReplicaStartsBeforeRedis: a replica does not need Redis to start; it
// is not ready until Redis is there, and then it is, without a restart.
// It gets a Redis of its own, created but not yet started.
func (s *stack) testReplicaStartsBeforeRedis(t *testing.T) {
	late := s.startRedis(t, "redis-late", "redis-late", "", false)
	r := s.startReplicas(t, replicaSpec{
		name: "early", host: firstExtraHost + 3,
		env:     map[string]string{"REDIS_ADDR": "redis-late:6379"},
		waitFor: "/healthz",
	})[0]
	for range 3 {
		if res := r.api.ready(t); res.status != http.StatusServiceUnavailable {
			t.Fatalf("GET /readyz without Redis: got %v, want 503", res)
		}
		time.Sleep(300 * time.Millisecond)
	}
	before := inspect(t, r).State.StartedAt

	if err := late.ctr.Start(context.Background()); err != nil {
		t.Fatalf("starting redis-late: %v", err)
	}
	eventually(t, 15*time.Second, "early ready", func() error {
		if res := r.api.ready(t); res.status != http.StatusOK {
			return fmt.Errorf("GET /readyz: got %v", res)
		}
		return nil
	})
	u := newUser(t, "early")
	r.api.register(t, u)
	r.api.profile(t, r.api.login(t, u), u.Username)

	info := inspect(t, r)
	if info.State.StartedAt != before || info.RestartCount != 0 {
		t.Errorf("early was restarted: started %s (was %s), restart count %d", info.State.StartedAt, before, info.RestartCount)
	}
}

// Load of the fault and partition cases: 100 profile reads and 2 logins
// a second through nginx (and in the rolling restart 20 refreshes), far
// below what the published port carries and light enough for a busy
// 2-core machine.
const (
	readEvery  = 10 * time.Millisecond
	loginEvery = 500 * time.Millisecond

	// The rolling restart's refreshes, each with a body that takes this
	// long to arrive.
	refreshEvery    = 50 * time.Millisecond
	refreshBodyTime = 300 * time.Millisecond
)

// testZeroFailuresUnderFaults: with nginx's retries, losing a replica,
// abruptly or in a rolling restart, costs clients nothing.
func (s *stack) testZeroFailuresUnderFaults(t *testing.T) {
	u := newUser(t, "faults")
	s.nginx.api.register(t, u)
	token := s.nginx.api.login(t, u)
	traffic := func() *load {
		return startLoad(profileStream(s.nginx.api, token, u.Username, readEvery), loginStream(s.nginx.api, u, loginEvery))
	}

	t.Run("KillOne", func(t *testing.T) {
		api2 := s.replicas[1]
		l := traffic()
		time.Sleep(2 * time.Second)
		s.kill(t, api2)
		time.Sleep(3 * time.Second) // under load with api2 gone
		start(t, api2)
		s.servedThroughNginxBy(t, api2, token, u.Username)
		time.Sleep(time.Second)
		rep := l.stop()
		t.Logf("SIGKILL of api2 and its start: %v", rep)
		rep.wantNoFailures(t)
	})
	t.Run("RollingRestart", func(t *testing.T) {
		// Reads and logins that a stopping replica drops nginx sends
		// again elsewhere; a refresh it has received it never does. A
		// refresh every 50 ms whose body takes 300 ms keeps about two in
		// flight at each replica when its SIGTERM comes: a replica that
		// does not finish them before it exits fails them with 502.
		ru := newUser(t, "faults-refresh")
		s.nginx.api.register(t, ru)
		var tokens []string
		for range 16 {
			tokens = append(tokens, s.nginx.api.login(t, ru))
		}
		l := startLoad(
			profileStream(s.nginx.api, token, u.Username, readEvery),
			loginStream(s.nginx.api, u, loginEvery),
			refreshStream(s.nginx.api, tokens, refreshEvery, refreshBodyTime),
		)
		time.Sleep(2 * time.Second)
		for _, r := range s.replicas {
			stop(t, r)  // SIGTERM: the replica drains and exits
			start(t, r) // returns once /readyz answers 200
		}
		time.Sleep(time.Second)
		rep := l.stop()
		t.Logf("rolling restart with SIGTERM: %v", rep)
		rep.wantNoFailures(t)
	})
}

// testPartitions: a replica nginx cannot reach costs little; a replica
// that cannot reach Redis says so (503) and never logs anyone out.
func (s *stack) testPartitions(t *testing.T) {
	u := newUser(t, "partition")
	s.nginx.api.register(t, u)
	token := s.nginx.api.login(t, u)
	reads := func() *load { return startLoad(profileStream(s.nginx.api, token, u.Username, readEvery)) }

	t.Run("EdgeCut", func(t *testing.T) {
		api3 := s.replicas[2]
		l := reads()
		time.Sleep(time.Second)
		s.disconnect(t, api3, s.edge)
		cut := time.Now()
		time.Sleep(8 * time.Second) // under load with api3 unreachable
		back := time.Now()
		s.reconnect(t, api3, s.edge)
		rep := l.stop()
		t.Logf("api3 cut off edge for 8 s: %v", rep)
		rep.logFailures(t)
		if rep.failureShare() >= 0.01 {
			t.Errorf("%.2f%% of requests failed, want under 1%%", 100*rep.failureShare())
		}
		if p99 := rep.quantile(0.99); p99 >= 2500*time.Millisecond {
			t.Errorf("p99 latency %v, want under 2.5 s", p99)
		}
		// nginx sees api3 fail within proxy_read_timeout (2 s) of the cut
		// and from then on leaves it out (max_fails=1 fail_timeout=1s),
		// trying it with one request every 1-2 s: of 100 requests a
		// second, about 1 % wait a timeout. A replica never left out
		// costs every third request proxy_connect_timeout (1 s).
		const slow = 500 * time.Millisecond
		leftOut := rep.sentBetween(cut.Add(2*time.Second), back)
		t.Logf("sent from 2 s after the cut until api3 was back: %v, %.1f%% slower than %v", leftOut, 100*leftOut.slowerThan(slow), slow)
		if share := leftOut.slowerThan(slow); share >= 0.05 {
			t.Errorf("from 2 s after api3 was cut off, %.1f%% of %d requests took longer than %v, want under 5%%: nginx does not leave the unreachable replica out", 100*share, leftOut.requests, slow)
		}

		if got := inspect(t, api3).NetworkSettings.Networks[s.edge.Name].IPAddress; got != api3.ip {
			t.Fatalf("api3 came back on edge at %v, want %v", got, api3.ip)
		}
		s.servedThroughNginxBy(t, api3, token, u.Username)
		l = reads()
		time.Sleep(3 * time.Second)
		rep = l.stop()
		t.Logf("after api3 reconnected: %v", rep)
		if rep.failed > 0 || rep.instances[api3.name] == 0 {
			rep.logFailures(t)
			t.Errorf("after reconnecting api3: %d of %d requests failed and api3 served %d, want none failed and api3 serving", rep.failed, rep.requests, rep.instances[api3.name])
		}
	})
	t.Run("DataCut", func(t *testing.T) {
		api2 := s.replicas[1]
		l := reads()
		s.disconnect(t, api2, s.data)
		api2.api.eventuallyNotReady(t)
		for range 5 {
			r := api2.api.call(t, http.MethodGet, "/profile", token, nil)
			if r.status != http.StatusServiceUnavailable || r.errorMessage() != "Session store unavailable" {
				t.Errorf("GET /profile on api2 cut off Redis: got %v, want 503 Session store unavailable", r)
			}
			if r := api2.api.ready(t); r.status != http.StatusServiceUnavailable {
				t.Errorf("GET /readyz on api2 cut off Redis: got %v, want 503", r)
			}
			time.Sleep(500 * time.Millisecond)
		}
		for _, c := range []*client{s.replicas[0].api, s.replicas[2].api} {
			c.profile(t, token, u.Username)
		}
		s.reconnect(t, api2, s.data)
		eventually(t, 10*time.Second, "api2 serving again", func() error {
			if r := api2.api.ready(t); r.status != http.StatusOK {
				return fmt.Errorf("GET /readyz: %v", r)
			}
			return profileOf(api2.api.call(t, http.MethodGet, "/profile", token, nil), u.Username)
		})
		rep := l.stop()
		t.Logf("api2 cut off data: through nginx %v", rep)
		rep.logFailures(t)
		for status, n := range rep.statuses {
			if status != http.StatusServiceUnavailable {
				t.Errorf("%d requests through nginx got status %d, want only 503s from api2", n, status)
			}
		}
	})
}

// testUsersAreIsolated: under concurrency no answer carries another
// user's data.
func (s *stack) testUsersAreIsolated(t *testing.T) {
	const users, reads = 100, 5
	prefix := "iso-" + randomHex(t, 3) + "-u"
	names := regexp.MustCompile(regexp.QuoteMeta(prefix) + `[0-9]{3}`)
	var retries retryCount

	var wg sync.WaitGroup
	for i := range users {
		u := credentials{Username: fmt.Sprintf("%s%03d", prefix, i), Password: "correct horse battery staple"}
		wg.Go(func() {
			send := func(method, path, token string, body any) (response, error) {
				return retries.on503(func() (response, error) {
					return s.nginx.api.do(context.Background(), method, path, token, body)
				})
			}
			check := func(what string, r response) {
				for _, name := range names.FindAllString(string(r.body)+fmt.Sprint(r.header), -1) {
					if name != u.Username {
						t.Errorf("%s of %s carries %s: %v", what, u.Username, name, r)
					}
				}
			}
			r, err := send(http.MethodPost, "/auth/register", "", u)
			if err != nil || r.status != http.StatusCreated {
				t.Errorf("register %s: got %v, %v, want 201", u.Username, r, err)
				return
			}
			r, err = send(http.MethodPost, "/auth/login", "", u)
			if err != nil || r.status != http.StatusOK {
				t.Errorf("login %s: got %v, %v, want 200", u.Username, r, err)
				return
			}
			check("login", r)
			token, err := sessionID(r)
			if err != nil {
				t.Error(err)
				return
			}
			for range reads {
				r, err := send(http.MethodGet, "/profile", token, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if err := profileOf(r, u.Username); err != nil {
					t.Errorf("%s: %v", u.Username, err)
				}
				check("GET /profile", r)
			}
		})
	}
	wg.Wait()
	t.Logf("%d users, %d reads each, through nginx; retried after a 503: %v", users, reads, retries.byReason)
}

// retryCount counts the retries of on503, by the 503's message.
type retryCount struct {
	mu       sync.Mutex
	byReason map[string]int
}

// on503 sends again, after Retry-After, what was answered 503 with a
// Retry-After: password hashing's "Server busy" when 100 logins arrive at
// once, or "Session store unavailable" when a loaded machine makes Redis
// late. The contract says such a 503 changed nothing, so a retried
// register must still be a 201; a client does the same.
func (rc *retryCount) on503(send func() (response, error)) (response, error) {
	for attempt := 0; ; attempt++ {
		r, err := send()
		after, atoiErr := strconv.Atoi(r.header.Get("Retry-After"))
		if err != nil || r.status != http.StatusServiceUnavailable || atoiErr != nil || attempt == 10 {
			return r, err
		}
		rc.mu.Lock()
		if rc.byReason == nil {
			rc.byReason = map[string]int{}
		}
		rc.byReason[r.errorMessage()]++
		rc.mu.Unlock()
		time.Sleep(time.Duration(max(after, 1)) * time.Second)
	}
}
