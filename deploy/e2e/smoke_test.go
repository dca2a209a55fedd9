package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// client talks to the stack's published loopback ports only.
var client = &http.Client{Timeout: 10 * time.Second}

type response struct {
	status   int
	instance string
	body     string
	header   http.Header
}

func (s *stack) do(method, path, token, body string) (response, error) {
	req, err := http.NewRequest(method, s.nginx+path, strings.NewReader(body))
	if err != nil {
		return response{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Session-Id", token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{resp.StatusCode, resp.Header.Get("X-Instance"), string(b), resp.Header}, nil
}

func (s *stack) mustDo(t testing.TB, method, path, token, body string) response {
	t.Helper()
	r, err := s.do(method, path, token, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// profileOK checks that token reads username's profile and returns the
// replica that answered.
func (s *stack) profileOK(token, username string) (string, error) {
	r, err := s.do("GET", "/profile", token, "")
	if err != nil {
		return "", err
	}
	var p struct{ Username string }
	if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &p) != nil || p.Username != username {
		return r.instance, fmt.Errorf("GET /profile: got %d %s from %q, want 200 with username %q", r.status, r.body, r.instance, username)
	}
	return r.instance, nil
}

// TestStack runs the deployment end to end: one stack, brought up once,
// checked step by step, torn down with its volumes.
func TestStack(t *testing.T) {
	s := startStack(t)

	t.Run("NginxAnswers", func(t *testing.T) {
		err := poll(90*time.Second, 500*time.Millisecond, func() error {
			r, err := s.do("GET", "/readyz", "", "")
			if err != nil {
				return err
			}
			if r.status != http.StatusOK {
				return fmt.Errorf("GET /readyz: got %d %s, want 200", r.status, r.body)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("stack not ready through nginx: %v", err)
		}
	})

	t.Run("NginxConfigValid", func(t *testing.T) {
		out, err := s.run(time.Minute, "exec", "-T", "nginx", "nginx", "-t")
		if err != nil || !strings.Contains(out, "test is successful") {
			t.Fatalf("nginx -t: got %v\n%s, want success", err, out)
		}
	})

	t.Run("PortsOnLoopbackOnly", func(t *testing.T) {
		published := map[string]bool{"nginx": true, "prometheus": true, "alertmanager": true}
		for _, svc := range []string{"redis", "api1", "api2", "api3", "nginx", "prometheus", "alertmanager", "redis-exporter", "nginx-exporter"} {
			out, err := docker("inspect", "-f", "{{json .NetworkSettings.Ports}}", s.container(t, svc))
			if err != nil {
				t.Fatalf("inspecting %s: %v %s", svc, err, out)
			}
			var ports map[string][]struct{ HostIp, HostPort string }
			if err := json.Unmarshal([]byte(out), &ports); err != nil {
				t.Fatalf("ports of %s: %v in %s", svc, err, out)
			}
			for port, bindings := range ports {
				if !published[svc] && len(bindings) > 0 {
					t.Errorf("%s %s: got published on %v, want not published", svc, port, bindings)
				}
				for _, b := range bindings {
					if b.HostIp != "127.0.0.1" {
						t.Errorf("%s %s: got published on %q, want 127.0.0.1 only", svc, port, b.HostIp)
					}
				}
			}
		}
	})

	t.Run("NginxCannotReachRedis", func(t *testing.T) {
		// edge: nginx and the replicas; data: the replicas and Redis.
		want := map[string]string{
			"nginx": "edge", "prometheus": "edge,metrics", "redis": "data",
			"alertmanager": "edge", "nginx-exporter": "edge", "redis-exporter": "data,metrics",
			"api1": "data,edge", "api2": "data,edge", "api3": "data,edge",
		}
		for svc, nets := range want {
			out, err := docker("inspect", "-f", "{{range $n, $_ := .NetworkSettings.Networks}}{{$n}} {{end}}", s.container(t, svc))
			if err != nil {
				t.Fatalf("inspecting %s: %v %s", svc, err, out)
			}
			var got []string
			for _, n := range strings.Fields(out) {
				got = append(got, strings.TrimPrefix(n, s.project+"_"))
			}
			sort.Strings(got)
			if strings.Join(got, ",") != nets {
				t.Errorf("networks of %s: got %v, want %s", svc, got, nets)
			}
		}
		// Not even Redis's address works from nginx: there is no route.
		addr, err := docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", s.container(t, "redis"))
		if err != nil || net.ParseIP(strings.TrimSpace(addr)) == nil {
			t.Fatalf("address of redis: got %q, %v", addr, err)
		}
		connects := func(hostPort string) (bool, string) {
			host, port, _ := strings.Cut(hostPort, ":")
			probe := fmt.Sprintf("timeout 3 bash -c 'exec 3<>/dev/tcp/%s/%s' && echo connected", host, port)
			out, _ := s.run(time.Minute, "exec", "-T", "nginx", "bash", "-c", probe)
			return strings.Contains(out, "connected"), out
		}
		// The probe itself works: nginx does reach a replica.
		if ok, out := connects("api1:3000"); !ok {
			t.Fatalf("probe from nginx to api1:3000: got %q, want connected", out)
		}
		if ok, out := connects(strings.TrimSpace(addr) + ":6379"); ok {
			t.Errorf("nginx connects to redis at %s: got %q, want no route", strings.TrimSpace(addr), out)
		}
		// Nor the Redis exporter, whose /scrape?target= would connect to
		// Redis (or anywhere) with its password and list the keys: not
		// by name, nor at any of its addresses.
		if ok, out := connects("redis-exporter:9121"); ok {
			t.Errorf("nginx connects to redis-exporter:9121: got %q, want no route", out)
		}
		addrs, err := docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", s.container(t, "redis-exporter"))
		if err != nil || len(strings.Fields(addrs)) != 2 {
			t.Fatalf("addresses of redis-exporter: got %q, %v, want two", addrs, err)
		}
		for _, a := range strings.Fields(addrs) {
			if ok, out := connects(a + ":9121"); ok {
				t.Errorf("nginx connects to redis-exporter at %s: got %q, want no route", a, out)
			}
		}
	})

	t.Run("RedisAppendOnly", func(t *testing.T) {
		out := s.mustRun(t, time.Minute, "exec", "-T", "redis", "redis-cli", "CONFIG", "GET", "appendonly", "appendfsync")
		got := map[string]string{}
		f := strings.Fields(out)
		for i := 0; i+1 < len(f); i += 2 {
			got[f[i]] = f[i+1]
		}
		if got["appendonly"] != "yes" || got["appendfsync"] != "everysec" {
			t.Errorf("redis append-only settings: got %v, want appendonly yes, appendfsync everysec", got)
		}
		out, _ = s.run(time.Minute, "exec", "-T", "-e", "REDISCLI_AUTH=", "redis", "redis-cli", "GET", "x")
		if !strings.Contains(out, "NOAUTH") {
			t.Errorf("redis without password: got %q, want NOAUTH", out)
		}
	})

	username := "e2e_" + randomHex(t, 6)
	const password = "correct horse battery staple"
	var token string

	t.Run("RegisterAndLoginThroughNginx", func(t *testing.T) {
		creds := fmt.Sprintf(`{"username":%q,"password":%q}`, username, password)
		if r := s.mustDo(t, "POST", "/auth/register", "", creds); r.status != http.StatusCreated {
			t.Fatalf("register: got %d %s, want 201", r.status, r.body)
		}
		r := s.mustDo(t, "POST", "/auth/login", "", creds)
		var login struct{ SessionID string }
		if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &login) != nil || login.SessionID == "" {
			t.Fatalf("login: got %d %s, want 200 with a sessionId", r.status, r.body)
		}
		token = login.SessionID
		if _, err := s.profileOK(token, username); err != nil {
			t.Fatal(err)
		}
		if id := r.header.Get("X-Request-Id"); id == "" {
			t.Errorf("login: got no X-Request-Id, want one on every response")
		}
		// The replicas trust nginx's X-Forwarded-For (TRUSTED_PROXIES):
		// without it every client would be nginx's address, sharing one
		// login limit per address and listed with nginx's IP.
		r = s.mustDo(t, "GET", "/auth/sessions", token, "")
		var list struct{ Sessions []struct{ IP string } }
		if err := json.Unmarshal([]byte(r.body), &list); err != nil || len(list.Sessions) != 1 {
			t.Fatalf("GET /auth/sessions: got %d %s, want the one session", r.status, r.body)
		}
		if nginxIP := s.subnetPrefix() + ".10"; list.Sessions[0].IP == nginxIP || list.Sessions[0].IP == "" {
			t.Errorf("the session's IP is %q, nginx's own address (%s): the replicas do not trust nginx's X-Forwarded-For", list.Sessions[0].IP, nginxIP)
		}
	})
	if token == "" {
		t.Fatal("no session to go on with")
	}

	t.Run("RoundRobinCoversEveryReplica", func(t *testing.T) {
		seen := map[string]int{}
		for range 30 {
			instance, err := s.profileOK(token, username)
			if err != nil {
				t.Fatal(err)
			}
			seen[instance]++
		}
		if got, want := keys(seen), strings.Join(s.replicas, ","); got != want {
			t.Errorf("X-Instance values over 30 requests: got %v (%v), want %v", got, seen, want)
		}
	})

	// servedBy polls the profile until replica answers it, and requires
	// every answer on the way to be a 200: nginx must route around a replica
	// that is not back yet.
	servedBy := func(t *testing.T, replica string) {
		t.Helper()
		requests := 0
		err := poll(60*time.Second, 200*time.Millisecond, func() error {
			requests++
			instance, err := s.profileOK(token, username)
			if err != nil {
				t.Fatalf("request %d after %s came back: %v", requests, replica, err)
			}
			if instance != replica {
				return fmt.Errorf("%s has not answered after %d requests", replica, requests)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// readsDuring reads the profile in a loop while action runs and
	// returns how many reads there were and the failed ones: nginx must
	// retry a GET that a stopping replica refuses on another replica.
	readsDuring := func(action func()) (int, []error) {
		type result struct {
			n      int
			failed []error
		}
		ctx, cancel := context.WithCancel(context.Background())
		results := make(chan result, 1) // buffered: the reader never blocks
		go func() {
			var r result
			for ctx.Err() == nil {
				r.n++
				if _, err := s.profileOK(token, username); err != nil {
					r.failed = append(r.failed, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			results <- r
		}()
		func() {
			defer cancel() // also when action fails the test
			action()
		}()
		r := <-results
		return r.n, r.failed
	}

	t.Run("RestartedReplicaServesTheSameSession", func(t *testing.T) {
		n, failed := readsDuring(func() { s.mustRun(t, 2*time.Minute, "restart", "api2") })
		if len(failed) > 0 {
			t.Errorf("reads during the restart of api2: got %d of %d failed, first: %v, want none", len(failed), n, failed[0])
		}
		t.Logf("%d reads during the restart of api2", n)
		servedBy(t, "api2")
	})

	t.Run("RollingRestartLosesNothing", func(t *testing.T) { testRollingRestart(t, s, token) })

	// The hard case for nginx 1.22, which resolves api3 only at start: the
	// replica is removed, another container takes the address it had, and
	// then the replica is created again. Only a fixed address brings it
	// back where nginx sends its requests.
	t.Run("RecreatedReplicaServesTheSameSession", func(t *testing.T) {
		before := s.container(t, "api3")
		s.mustRun(t, 2*time.Minute, "rm", "--stop", "--force", "api3")
		squatter, err := docker("run", "-d", "--rm", "--network", s.project+"_edge",
			"--entrypoint", "sleep", s.image("REDIS_IMAGE"), "600")
		if err != nil {
			t.Fatalf("starting a container on the stack's network: %v %s", err, squatter)
		}
		t.Cleanup(func() {
			if out, err := docker("rm", "-f", strings.TrimSpace(squatter)); err != nil {
				t.Errorf("removing the squatting container: %v %s", err, out)
			}
		})
		s.mustRun(t, 2*time.Minute, "up", "-d", "--no-deps", "--no-build", "api3")
		if after := s.container(t, "api3"); after == before {
			t.Fatalf("api3 container: got %s again, want a new one", after)
		}
		servedBy(t, "api3")
	})

	// nginx started while a replica is down: the replica is served once
	// it is up again, without restarting nginx. Docker's DNS would have
	// named only the running replicas; the hosts file names all three.
	t.Run("ReplicaDownWhenNginxStartsJoinsLater", func(t *testing.T) {
		s.mustRun(t, 2*time.Minute, "stop", "api1")
		s.mustRun(t, 2*time.Minute, "restart", "nginx")
		if err := poll(60*time.Second, 200*time.Millisecond, func() error {
			_, err := s.profileOK(token, username)
			return err
		}); err != nil {
			t.Fatalf("reads through the restarted nginx: %v", err)
		}
		s.mustRun(t, 2*time.Minute, "start", "api1")
		servedBy(t, "api1")
	})

	t.Run("RedisOutageThroughNginx", func(t *testing.T) {
		// A frozen Redis: every replica answers 503 "Session store
		// unavailable". nginx must pass that on, not count it as a failed
		// replica: with all three marked down it would answer 502 itself,
		// and keep doing so for fail_timeout after Redis is back.
		//
		// Prometheus must have seen Redis up before, so that the 0 below
		// is the outage's.
		if err := s.waitQuery(60*time.Second, `redis_up{job="redis"} == 1`); err != nil {
			t.Fatalf("before pausing Redis: %v", err)
		}
		s.mustRun(t, time.Minute, "pause", "redis")
		paused := true
		defer func() {
			if paused {
				s.run(time.Minute, "unpause", "redis")
			}
		}()
		for i := 0; i < 12; i++ {
			r := s.mustDo(t, "GET", "/profile", token, "")
			if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "Session store unavailable") ||
				r.header.Get("Retry-After") != "1" || r.instance == "" {
				t.Fatalf("GET /profile #%d with Redis paused: got %d %q (Retry-After %q, X-Instance %q), want a replica's 503 Session store unavailable",
					i, r.status, r.body, r.header.Get("Retry-After"), r.instance)
			}
		}
		// The Redis exporter gives up on the frozen Redis within
		// Prometheus's scrape timeout and says so: redis_up 0 from a
		// target that is up. An exporter that waits longer fails the
		// scrape instead, and every redis_* series vanishes.
		t.Run("ExporterReportsRedisDown", func(t *testing.T) {
			start := time.Now()
			err := s.waitQuery(30*time.Second, `redis_up{job="redis"} == 0`, `up{job="redis"} == 1`)
			if err != nil {
				t.Fatalf("with Redis paused: %v", err)
			}
			t.Logf("redis_up 0 from a scraped exporter after %v", time.Since(start).Round(100*time.Millisecond))
		})
		s.mustRun(t, time.Minute, "unpause", "redis")
		paused = false
		// Recovery needs nothing but Redis: well within nginx's fail_timeout.
		err := poll(5*time.Second, 100*time.Millisecond, func() error {
			_, err := s.profileOK(token, username)
			return err
		})
		if err != nil {
			t.Fatalf("after Redis came back: %v", err)
		}
	})

	t.Run("SessionSurvivesRedisRecreate", func(t *testing.T) {
		// A new container on the same named volume: only the append-only
		// file can bring the session back.
		before := s.container(t, "redis")
		s.mustRun(t, 2*time.Minute, "up", "-d", "--no-deps", "--no-build", "--force-recreate", "redis")
		if after := s.container(t, "redis"); after == before {
			t.Fatalf("redis container: got %s again, want a new one", after)
		}
		// While Redis comes back the API answers 503, never 401.
		err := poll(60*time.Second, 250*time.Millisecond, func() error {
			r, err := s.do("GET", "/profile", token, "")
			if err != nil {
				return err
			}
			if r.status == http.StatusUnauthorized {
				t.Fatalf("GET /profile after a Redis restart: got 401 %s, want the session kept", r.body)
			}
			if r.status != http.StatusOK {
				return fmt.Errorf("GET /profile: got %d %s", r.status, r.body)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("MetricsNotRouted", func(t *testing.T) {
		for _, path := range []string{"/metrics", "/metrics/", "/metrics?x=1", "//metrics", "/metrics/x"} {
			r := s.mustDo(t, "GET", path, "", "")
			if r.status != http.StatusNotFound || strings.Contains(r.body, "api_http_requests_total") {
				t.Errorf("GET %s through nginx: got %d %.80q, want 404", path, r.status, r.body)
			}
			if r.instance != "" {
				t.Errorf("GET %s through nginx: got an answer from replica %s, want nginx's own", path, r.instance)
			}
		}
	})

	t.Run("NginxErrorsAreJSON", func(t *testing.T) {
		big := fmt.Sprintf(`{"username":"u","password":%q}`, strings.Repeat("a", 70000))
		r := s.mustDo(t, "POST", "/auth/login", "", big)
		if r.status != http.StatusRequestEntityTooLarge || !isErrorJSON(r.body) {
			t.Errorf("login with a 70 kB body: got %d %.80q, want 413 {\"error\":…}", r.status, r.body)
		}
		r = s.mustDo(t, "GET", "/no-such-route", "", "")
		if r.status != http.StatusNotFound || !isErrorJSON(r.body) || r.instance == "" {
			t.Errorf("unknown route: got %d %q from %q, want the API's 404 JSON", r.status, r.body, r.instance)
		}
		testNginxOwnErrors(t, s)
	})

	t.Run("RefusedBodyChangesNothing", func(t *testing.T) { testRefusedBodyChangesNothing(t, s, username, password) })
	t.Run("SlowClientsLimitedPerAddress", func(t *testing.T) { testSlowClientsLimited(t, s) })
	t.Run("SlowBodyBoundedInTotal", func(t *testing.T) { testSlowBodyBounded(t, s) })
	t.Run("AccessLogKeepsTokensOut", func(t *testing.T) { testAccessLogKeepsTokensOut(t, s, token) })
	t.Run("SameOriginPostPasses", func(t *testing.T) { testSameOriginPost(t, s) })

	t.Run("RequestIDsAgree", func(t *testing.T) {
		// nginx's log, the replica and the response must carry one id: a
		// client's id when it is sane, otherwise one nginx makes.
		tests := []struct {
			name, path, sent string
			kept             bool
		}{
			{"SaneKept", "/profile", "e2e-request.id_" + randomHex(t, 4), true},
			{"SpaceReplaced", "/profile", "has space", false},
			{"TooLongReplaced", "/profile", strings.Repeat("a", 129), false},
			{"NginxOwnAnswer", "/metrics", "e2e-metrics-" + randomHex(t, 4), true},
		}
		var ids []string
		for _, tc := range tests {
			req, err := http.NewRequest("GET", s.nginx+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Session-Id", token)
			req.Header.Set("X-Request-Id", tc.sent)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			got := resp.Header.Get("X-Request-Id")
			switch {
			case tc.kept && got != tc.sent:
				t.Errorf("%s: got X-Request-Id %q, want %q", tc.name, got, tc.sent)
			case !tc.kept && (got == "" || got == tc.sent || len(got) > 128 || strings.ContainsAny(got, " \"")):
				t.Errorf("%s: got X-Request-Id %q, want a fresh sane id", tc.name, got)
			}
			ids = append(ids, got)
		}
		err := poll(10*time.Second, 200*time.Millisecond, func() error {
			nginxLog := s.mustRun(t, time.Minute, "logs", "--no-color", "nginx")
			apiLog := s.mustRun(t, time.Minute, "logs", "--no-color", "api1", "api2", "api3")
			for i, id := range ids {
				if !strings.Contains(nginxLog, `"request_id":"`+id+`"`) {
					return fmt.Errorf("nginx log: no line with request_id %q", id)
				}
				if tests[i].path == "/profile" && !strings.Contains(apiLog, `"request_id":"`+id+`"`) {
					return fmt.Errorf("replica logs: no line with request_id %q", id)
				}
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	})

	t.Run("AccessLogNamesTheUpstream", func(t *testing.T) {
		out := s.mustRun(t, time.Minute, "logs", "--no-color", "nginx")
		for _, line := range strings.Split(out, "\n") {
			_, record, ok := strings.Cut(line, "| ")
			if !ok || !strings.Contains(record, `"path":"/profile"`) {
				continue
			}
			var entry struct {
				Instance     string `json:"instance"`
				RequestID    string `json:"request_id"`
				Status       int    `json:"status"`
				UpstreamAddr string `json:"upstream_addr"`
			}
			if err := json.Unmarshal([]byte(record), &entry); err != nil {
				t.Fatalf("access log line %q: %v, want JSON", record, err)
			}
			if entry.UpstreamAddr == "" || entry.RequestID == "" || entry.Status == 0 {
				t.Errorf("access log entry %q: got upstream %q, request id %q, status %d, want all set",
					record, entry.UpstreamAddr, entry.RequestID, entry.Status)
			}
			// The host name, as the replicas' lines carry theirs.
			if entry.Instance != "nginx" {
				t.Errorf("access log entry %q: got instance %q, want nginx", record, entry.Instance)
			}
			return
		}
		t.Fatalf("nginx logs: got no access log line for /profile in\n%s", out)
	})

	t.Run("PrometheusScrapesEveryReplica", func(t *testing.T) {
		q := s.prom + "/api/v1/query?query=" + url.QueryEscape(`up{job="api"}`)
		err := poll(90*time.Second, time.Second, func() error {
			resp, err := client.Get(q)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var v struct {
				Data struct {
					Result []struct {
						Metric map[string]string
						Value  [2]any
					}
				}
			}
			if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
				return err
			}
			up := map[string]int{}
			for _, r := range v.Data.Result {
				if r.Value[1] == "1" {
					up[r.Metric["instance"]]++
				}
			}
			if got, want := keys(up), strings.Join(s.replicas, ","); got != want || len(v.Data.Result) != len(s.replicas) {
				return fmt.Errorf("up{job=\"api\"} == 1: got %v of %d series, want %v", got, len(v.Data.Result), want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	monitoringChecks(t, s)
}

// monitoringChecks are the stack's monitoring, end to end: every health
// check passes, Prometheus scrapes the exporters and has every exporter
// series the dashboard and the alert rules query, and its alerts reach
// Alertmanager.
func monitoringChecks(t *testing.T, s *stack) {
	t.Run("EveryServiceHealthy", func(t *testing.T) {
		// The nginx exporter has no health check (its official image is
		// FROM scratch); Prometheus's up covers it below.
		services := []string{"redis", "api1", "api2", "api3", "nginx", "prometheus", "alertmanager", "redis-exporter"}
		for _, svc := range services {
			id := s.container(t, svc)
			err := poll(90*time.Second, time.Second, func() error {
				out, err := docker("inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}", id)
				if err != nil {
					return fmt.Errorf("inspecting %s: %v %s", svc, err, out)
				}
				if got := strings.TrimSpace(out); got != "healthy" {
					return fmt.Errorf("health of %s: got %s, want healthy", svc, got)
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("PrometheusScrapesTheExporters", func(t *testing.T) {
		jobs := []string{"alertmanager", "nginx", "prometheus", "redis"}
		err := poll(90*time.Second, time.Second, func() error {
			series, err := s.query(`up{job!="api"} == 1`)
			if err != nil {
				return err
			}
			up := map[string]int{}
			for _, m := range series {
				up[m["job"]]++
			}
			if got, want := keys(up), strings.Join(jobs, ","); got != want {
				return fmt.Errorf("up{job!=\"api\"} == 1: got jobs %v, want %v", got, want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// The exporters' series the dashboard and the alerts query exist,
		// under the names these exporter versions give them.
		for _, name := range exporterSeries(t) {
			series, err := s.query(name)
			if err != nil {
				t.Fatal(err)
			}
			if len(series) == 0 {
				t.Errorf("Prometheus has no %s: the dashboard or an alert queries a series the exporter does not export", name)
			}
		}
		// The compose file's maxmemory reaches Redis, so RedisMemoryNearMax
		// has a limit to compare with.
		if series, err := s.query(`redis_memory_max_bytes > 0`); err != nil || len(series) != 1 {
			t.Errorf("redis_memory_max_bytes > 0: got %v, %v, want one series", series, err)
		}
	})

	t.Run("MonitoringLogsJSON", func(t *testing.T) {
		// Like the replicas and nginx's access log: one JSON object per
		// line, on stdout or stderr. Redis and the nginx exporter have no
		// such format.
		for _, svc := range []string{"prometheus", "alertmanager", "redis-exporter"} {
			out, err := docker("logs", s.container(t, svc))
			if err != nil {
				t.Fatalf("logs of %s: %v %s", svc, err, out)
			}
			lines := 0
			for _, line := range strings.Split(out, "\n") {
				if strings.TrimSpace(line) == "" {
					continue
				}
				lines++
				var record map[string]any
				if err := json.Unmarshal([]byte(line), &record); err != nil {
					t.Errorf("log line of %s: got %q, want a JSON object", svc, line)
					break
				}
			}
			if lines == 0 {
				t.Errorf("logs of %s: got no line, want its start-up lines", svc)
			}
		}
	})

	t.Run("AlertsReachAlertmanager", func(t *testing.T) {
		// Watchdog always fires; amtool asks Alertmanager inside its own
		// container, so the check needs no published port of its.
		err := poll(90*time.Second, 2*time.Second, func() error {
			out, err := s.run(time.Minute, "exec", "-T", "alertmanager",
				"amtool", "alert", "query", "--alertmanager.url=http://127.0.0.1:9093", "alertname=Watchdog")
			if err != nil || !strings.Contains(out, "Watchdog") {
				return fmt.Errorf("amtool alert query alertname=Watchdog: got %v\n%s, want the Watchdog alert", err, out)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// query runs an instant PromQL query on the stack's Prometheus and returns
// the label sets of the result.
func (s *stack) query(expr string) ([]map[string]string, error) {
	resp, err := client.Get(s.prom + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var v struct {
		Status string
		Data   struct {
			Result []struct{ Metric map[string]string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, fmt.Errorf("query %s: %w", expr, err)
	}
	if v.Status != "success" {
		return nil, fmt.Errorf("query %s: got status %q, want success", expr, v.Status)
	}
	var out []map[string]string
	for _, r := range v.Data.Result {
		out = append(out, r.Metric)
	}
	return out, nil
}

// waitQuery polls Prometheus until every one of the instant queries
// returns exactly one series, for at most timeout.
func (s *stack) waitQuery(timeout time.Duration, exprs ...string) error {
	return poll(timeout, time.Second, func() error {
		var errs []error
		for _, expr := range exprs {
			series, err := s.query(expr)
			if err == nil && len(series) != 1 {
				err = fmt.Errorf("%s: got %d series %v, want 1", expr, len(series), series)
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
}

// exporterSeries returns the redis_… and nginx_… series that the dashboard
// and the alert rules select, in order.
func exporterSeries(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, path := range []string{"../grafana/dashboards/api.json", "../prometheus/alerts.yml"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range exporterSeriesRef.FindAllStringSubmatch(string(b), -1) {
			seen[m[1]] = true
		}
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		t.Fatal("got no redis_ or nginx_ series in the dashboard and alerts, want the exporters' key series")
	}
	return names
}

// exporterSeriesRef matches a selector of an exporter's series: its name
// followed by label matchers.
var exporterSeriesRef = regexp.MustCompile(`\b((?:redis|nginx)_[a-z_]+)\{`)

func isErrorJSON(body string) bool {
	var e struct{ Error string }
	return json.Unmarshal([]byte(body), &e) == nil && e.Error != ""
}

func keys(m map[string]int) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}
