package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// The limits of nginx.conf that the tests below go past.
const (
	connLimitPerAddr = 1024 // limit_conn conn_per_addr
	replicaReadLimit = 10 * time.Second
)

// nginxAddr is host:port of nginx on loopback.
func (s *stack) nginxAddr() string { return strings.TrimPrefix(s.nginx, "http://") }

// rawExchange sends raw on a new connection to nginx and reads one
// response, with its body, within timeout.
func (s *stack) rawExchange(raw string, timeout time.Duration) (*http.Response, string, error) {
	conn, err := net.DialTimeout("tcp", s.nginxAddr(), timeout)
	if err != nil {
		return nil, "", err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, "", err
	}
	if _, err := io.WriteString(conn, raw); err != nil {
		return nil, "", err
	}
	return readResponse(bufio.NewReader(conn))
}

func readResponse(rd *bufio.Reader) (*http.Response, string, error) {
	res, err := http.ReadResponse(rd, nil)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, string(b), err
}

// nginxErrorOK checks one of nginx's own errors: the status, the API's JSON
// form and Content-Type, and a request id.
func nginxErrorOK(res *http.Response, body string, status int) error {
	switch {
	case res.StatusCode != status:
		return fmt.Errorf("got %d %.100q, want %d", res.StatusCode, body, status)
	case !isErrorJSON(body):
		return fmt.Errorf("got body %.100q, want {\"error\":…}", body)
	case res.Header.Get("Content-Type") != "application/json; charset=utf-8":
		return fmt.Errorf("got Content-Type %q, want application/json; charset=utf-8", res.Header.Get("Content-Type"))
	case res.Header.Get("X-Request-Id") == "":
		return errors.New("got no X-Request-Id")
	}
	return nil
}

// testNginxOwnErrors sends requests that nginx refuses itself, some before
// it has a URI to route (a request line too long or malformed).
func testNginxOwnErrors(t *testing.T, s *stack) {
	long := "/" + strings.Repeat("a", 10000) // over large_client_header_buffers (8k)
	tests := []struct {
		name, raw string
		status    int
	}{
		{"RequestLineTooLong", "GET " + long + " HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusRequestURITooLong},
		{"RequestLineMalformed", "GET\x01 / HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusBadRequest},
		{"HeaderTooLarge", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 10000) + "\r\n\r\n", http.StatusBadRequest},
		{"HostMissing", "GET /healthz HTTP/1.1\r\n\r\n", http.StatusBadRequest},
		{"BodyTooLarge", "POST /auth/register HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n", http.StatusRequestEntityTooLarge},
		{"TransferEncodingUnknown", "POST /auth/register HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", http.StatusNotImplemented},
		{"InternalLocation", "GET /_nginx/error HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusNotFound},
		{"MethodTrace", "TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusMethodNotAllowed},
		// nginx lets these through; Go's HTTP server would answer them
		// with a plain-text 400.
		{"HostWithBraces", "GET /healthz HTTP/1.1\r\nHost: a{b}\r\n\r\n", http.StatusBadRequest},
		{"HostWithQuote", "POST /auth/login HTTP/1.1\r\nHost: a\"b\r\nContent-Length: 2\r\n\r\n{}", http.StatusBadRequest},
	}
	// An HTTP/1.0 request may come without a Host: the replicas serve it.
	t.Run("HTTP10WithoutHostServed", func(t *testing.T) {
		res, body, err := s.rawExchange("GET /healthz HTTP/1.0\r\n\r\n", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusOK || res.Header.Get("X-Instance") == "" || !strings.Contains(body, `"status":"ok"`) {
			t.Errorf("got %d %q from replica %q, want a replica's 200 {\"status\":\"ok\"}", res.StatusCode, body, res.Header.Get("X-Instance"))
		}
	})
	// nginx answers TRACE itself; on a known path its 405 names the
	// route's methods, as a replica's does.
	t.Run("TraceNamesAllow", func(t *testing.T) {
		res, body, err := s.rawExchange("TRACE /auth/sessions/abc HTTP/1.1\r\nHost: x\r\n\r\n", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := nginxErrorOK(res, body, http.StatusMethodNotAllowed); err != nil {
			t.Error(err)
		}
		if got := res.Header.Get("Allow"); got != "DELETE" {
			t.Errorf("Allow: got %q, want %q", got, "DELETE")
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, body, err := s.rawExchange(tc.raw, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if err := nginxErrorOK(res, body, tc.status); err != nil {
				t.Error(err)
			}
			if res.Header.Get("X-Instance") != "" {
				t.Errorf("got an answer from replica %s, want nginx's own", res.Header.Get("X-Instance"))
			}
		})
	}
}

// testRefusedBodyChangesNothing sends POST /auth/refresh, which takes no
// body, with a chunked one that nginx refuses part-way (too large, then
// malformed), in pieces, so that nginx has passed the header and the
// first chunk on to a replica before it refuses. The replica reads such a
// body before it acts, so the refused refresh must have left the token
// working; before, the replica refreshed at once and nginx's 413 or 400
// went to a client whose token was already dead.
func testRefusedBodyChangesNothing(t *testing.T, s *stack, username, password string) {
	chunk := func(s string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(s), s) }
	big := strings.Repeat("a", 40000)
	for _, tc := range []struct {
		name   string
		pieces []string
		status int
	}{
		{"TooLarge", []string{chunk(big), chunk(big) + "0\r\n\r\n"}, http.StatusRequestEntityTooLarge},
		{"Malformed", []string{chunk("{}"), "zz\r\n"}, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.mustDo(t, "POST", "/auth/login", "", fmt.Sprintf(`{"username":%q,"password":%q}`, username, password))
			var login struct{ SessionID string }
			if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &login) != nil {
				t.Fatalf("login: got %d %s", r.status, r.body)
			}
			conn, err := net.DialTimeout("tcp", s.nginxAddr(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
			pieces := append([]string{"POST /auth/refresh HTTP/1.1\r\nHost: x\r\nX-Session-Id: " + login.SessionID +
				"\r\nTransfer-Encoding: chunked\r\n\r\n"}, tc.pieces...)
			for i, p := range pieces {
				if i > 0 {
					// A slow client's pause: nginx forwards what it has.
					time.Sleep(300 * time.Millisecond)
				}
				if _, err := io.WriteString(conn, p); err != nil {
					break // nginx may refuse and close before the last piece
				}
			}
			res, body, err := readResponse(bufio.NewReader(conn))
			if err != nil {
				t.Fatal(err)
			}
			if err := nginxErrorOK(res, body, tc.status); err != nil {
				t.Error(err)
			}
			if _, err := s.profileOK(login.SessionID, username); err != nil {
				t.Errorf("after a refresh nginx refused: %v", err)
			}
		})
	}
}

// testSlowClientsLimited opens more connections than one address may have
// requests in flight, each sending headers and then one byte of a body
// that never comes, the way a client trickling its bodies would. nginx
// must answer those over the limit at once with its JSON 429, refuse the
// address meanwhile, and still serve another client.
func testSlowClientsLimited(t *testing.T, s *stack) {
	const n = connLimitPerAddr + 88
	start := time.Now()
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 32)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			conn, err := net.DialTimeout("tcp", s.nginxAddr(), 5*time.Second)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = conn
			_, err = fmt.Fprintf(conn, "POST /auth/logout HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for err := range errs {
		t.Fatalf("opening a slow connection: %v", err)
	}

	// The connections over the limit are answered at once; the others
	// wait for their bodies (at most replicaReadLimit, well past this).
	var limited, held int
	var mu sync.Mutex
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			res, body, err := readResponse(bufio.NewReader(c))
			mu.Lock()
			defer mu.Unlock()
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				held++
			case err != nil:
				t.Errorf("a slow connection: %v, want a 429 or no answer yet", err)
			default:
				if err := nginxErrorOK(res, body, http.StatusTooManyRequests); err != nil {
					t.Errorf("a slow connection over the limit: %v", err)
				} else if res.Header.Get("Retry-After") == "" {
					t.Errorf("a slow connection over the limit: got no Retry-After")
				}
				limited++
			}
		}()
	}
	wg.Wait()
	if elapsed := time.Since(start); elapsed > replicaReadLimit-2*time.Second {
		t.Fatalf("setting up the slow connections took %v, too close to the replicas' read timeout to tell", elapsed)
	}
	t.Logf("%d slow connections: %d held, %d answered 429", n, held, limited)
	if held > connLimitPerAddr || limited < n-connLimitPerAddr {
		t.Errorf("slow connections: got %d held and %d answered 429, want at most %d held", held, limited, connLimitPerAddr)
	}

	// The same address is over its limit meanwhile; another is not.
	if r := s.mustDo(t, "GET", "/healthz", "", ""); r.status != http.StatusTooManyRequests {
		t.Errorf("GET /healthz from the address holding the slow connections: got %d %s, want 429", r.status, r.body)
	}
	probe := `exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n' >&3 && timeout 5 head -n 1 <&3`
	out, err := s.run(time.Minute, "exec", "-T", "nginx", "bash", "-c", probe)
	if err != nil || !strings.Contains(out, " 200 ") {
		t.Errorf("GET /healthz from another address (inside the nginx container): got %v %q, want 200", err, out)
	}

	for _, c := range conns {
		c.Close()
	}
	err = poll(15*time.Second, 200*time.Millisecond, func() error {
		r, err := s.do("GET", "/healthz", "", "")
		if err == nil && r.status != http.StatusOK {
			err = fmt.Errorf("GET /healthz: got %d %s", r.status, r.body)
		}
		return err
	})
	if err != nil {
		t.Fatalf("after the slow connections closed: %v", err)
	}
}

// testSlowBodyBounded trickles a register body and a login body, one byte
// every 500 ms: each pause is well within nginx's client_body_timeout (per
// read), but nginx streams both bodies to a replica (login's too: only a
// body that came with its header is held to be resent, see nginx.conf), so
// the whole request must end when the replica's read timeout does, with a
// JSON answer, long before the body would be complete.
//
// The Stalled cases send a few bytes of the body and then nothing: nginx's
// client_body_timeout must not win the race with the replica's read
// timeout, since nginx answers its own timeout by closing the connection
// without a word.
func testSlowBodyBounded(t *testing.T, s *stack) {
	for _, tc := range []struct {
		name, path string
		stall      bool
	}{
		{"Register", "/auth/register", false},
		{"Login", "/auth/login", false},
		{"RegisterStalled", "/auth/register", true},
		{"LoginStalled", "/auth/login", true},
		{"LogoutStalled", "/auth/logout", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			trickleBody(t, s, tc.path, tc.stall)
		})
	}
}

// trickleBody sends a body one byte every 500 ms, or with stall six bytes
// and then nothing, and requires a JSON 4xx by the replica's read timeout.
func trickleBody(t *testing.T, s *stack, path string, stall bool) {
	const size = 200 // 100 s at this pace
	conn, err := net.DialTimeout("tcp", s.nginxAddr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, size)
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		conn.SetReadDeadline(time.Now().Add(replicaReadLimit + 10*time.Second))
		res, body, err := readResponse(bufio.NewReader(conn))
		took := time.Since(start)
		if err != nil {
			t.Errorf("slow %s body: got %v after %v, want an answer", path, err, took)
			return
		}
		t.Logf("slow %s body: answered %d %s after %v", path, res.StatusCode, strings.TrimSpace(body), took)
		if res.StatusCode < 400 || res.StatusCode >= 500 || !isErrorJSON(body) {
			t.Errorf("slow %s body: got %d %q, want a 4xx {\"error\":…}", path, res.StatusCode, body)
		}
		if took > replicaReadLimit+5*time.Second {
			t.Errorf("slow %s body: answered after %v, want the replica's read timeout (%v) to end it", path, took, replicaReadLimit)
		}
	}()
	if stall {
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := conn.Write([]byte(`{"use`)); err != nil {
			t.Fatal(err)
		}
		<-answered
		return
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for range size {
		select {
		case <-answered:
			return
		case <-tick.C:
			conn.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := conn.Write([]byte(" ")); err != nil {
				// The other side closed after answering; the reader reports.
				<-answered
				return
			}
		}
	}
	<-answered
	t.Errorf("slow %s body: the whole body went through, want the request cut off by the replica's read timeout", path)
}

// testAccessLogKeepsTokensOut sends a token where it does not belong, in a
// query string and as a path segment, also percent-encoded, and requires
// nginx's access log to show the path without any of it.
func testAccessLogKeepsTokensOut(t *testing.T, s *stack, token string) {
	id := "e2e-log-" + randomHex(t, 4)
	requests := []struct{ method, path, body, logged string }{
		{"GET", "/profile?sid=" + token, "", "/profile"},
		{"GET", "/auth/sessions/" + token, "", "/auth/sessions/<redacted>"},
		// One character in 20 escaped: no run of 22 plain characters is
		// left, but the escapes decode to the token.
		{"GET", "/auth/sessions/" + percentEncode(token, func(i int) bool { return i%20 == 19 }, "%%%02X"), "", "/auth/sessions/<redacted>"},
		// Every character escaped, in lower case.
		{"GET", "/auth/sessions/" + percentEncode(token, func(int) bool { return true }, "%%%02x"), "", "/auth/sessions/<redacted>"},
		// nginx refuses this one itself, a request it used to quote,
		// query string and all, in its error log.
		{"POST", "/auth/register?sid=" + token, strings.Repeat("a", 70000), "/auth/register"},
	}
	for i, r := range requests {
		req, err := http.NewRequest(r.method, s.nginx+r.path, strings.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Request-Id", fmt.Sprintf("%s-%d", id, i))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	err := poll(10*time.Second, 200*time.Millisecond, func() error {
		out := s.mustRun(t, time.Minute, "logs", "--no-color", "nginx")
		paths := map[string]string{}
		for _, line := range strings.Split(out, "\n") {
			_, record, ok := strings.Cut(line, "| ")
			if !ok || !strings.Contains(record, `"request_id":"`+id) {
				continue
			}
			var entry struct {
				RequestID string `json:"request_id"`
				Path      string `json:"path"`
			}
			if err := json.Unmarshal([]byte(record), &entry); err != nil {
				return fmt.Errorf("access log line %q: %v, want JSON", record, err)
			}
			paths[entry.RequestID] = entry.Path
		}
		if len(paths) < len(requests) {
			return fmt.Errorf("nginx log: got %d lines with request id %s-*, want %d", len(paths), id, len(requests))
		}
		if strings.Contains(out, token) {
			return fmt.Errorf("nginx log holds the token: %q", paths)
		}
		for i, r := range requests {
			if got := paths[fmt.Sprintf("%s-%d", id, i)]; got != r.logged {
				return fmt.Errorf("nginx log of %s %.60s…: got path %q, want %q", r.method, r.path, got, r.logged)
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// percentEncode escapes the bytes of s at the positions escape picks, each
// with format (%%%02X or %%%02x).
func percentEncode(s string, escape func(i int) bool, format string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if escape(i) {
			fmt.Fprintf(&b, format, s[i])
		} else {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// testSameOriginPost sends what a browser sends for a same-origin POST:
// an Origin with the port the page came from. The replicas compare it with
// the Host that nginx passes on, which must keep that port.
func testSameOriginPost(t *testing.T, s *stack) {
	req, err := http.NewRequest("POST", s.nginx+"/auth/login", strings.NewReader(`{"username":"nobody","password":"not the password"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", s.nginx)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("same-origin POST /auth/login with wrong credentials: got %d %s, want 401", resp.StatusCode, b)
	}
}

// loadResult counts the answers of a load run.
type loadResult struct {
	total    int
	failed   int
	statuses map[int]int
	replicas map[string]int
	first    []string // the first few failures
}

// loadDuring reads the profile from workers goroutines, each on its own
// keep-alive connection, while action runs, and counts the answers.
func (s *stack) loadDuring(token string, workers int, action func()) loadResult {
	c := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: workers},
	}
	defer c.CloseIdleConnections()
	stop := make(chan struct{})
	results := make(chan loadResult, workers)
	for range workers {
		go func() {
			r := loadResult{statuses: map[int]int{}, replicas: map[string]int{}}
			for {
				select {
				case <-stop:
					results <- r
					return
				default:
				}
				r.total++
				req, _ := http.NewRequest("GET", s.nginx+"/profile", nil)
				req.Header.Set("X-Session-Id", token)
				resp, err := c.Do(req)
				if err != nil {
					r.failed++
					if len(r.first) < 5 {
						r.first = append(r.first, err.Error())
					}
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				r.statuses[resp.StatusCode]++
				r.replicas[resp.Header.Get("X-Instance")]++
				if resp.StatusCode != http.StatusOK {
					r.failed++
					if len(r.first) < 5 {
						r.first = append(r.first, fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b))))
					}
				}
			}
		}()
	}
	func() {
		defer close(stop) // also when action fails the test
		action()
	}()
	sum := loadResult{statuses: map[int]int{}, replicas: map[string]int{}}
	for range workers {
		r := <-results
		sum.total += r.total
		sum.failed += r.failed
		for k, v := range r.statuses {
			sum.statuses[k] += v
		}
		for k, v := range r.replicas {
			sum.replicas[k] += v
		}
		sum.first = append(sum.first, r.first...)
	}
	return sum
}

// listening counts the "listening" lines in a container's log: one per
// start. docker itself answers much faster than a Compose command.
func listening(t testing.TB, container string) int {
	t.Helper()
	out, err := docker("logs", container)
	if err != nil {
		t.Fatalf("logs of %s: %v %s", container, err, out)
	}
	return strings.Count(out, `"msg":"listening"`)
}

// testRollingRestart restarts every replica in turn under load, each as
// soon as the one before listens again, and requires every request to be
// answered 200: nginx must route around each replica while it is away
// and take it back at once, however fast the restarts come. It does so
// twice: with `compose restart`, as an operator would, and with `docker
// restart` of the same containers, which is the same restart without the
// Compose CLI's own start-up (seconds for docker-compose 1.29 on a busy
// machine), so the replicas go down as close together as they can: about
// 3 s apart here, where nginx's former settings (max_fails=3
// fail_timeout=10s) left no replica in the rotation and answered 502.
func testRollingRestart(t *testing.T, s *stack, token string) {
	containers := map[string]string{}
	for _, replica := range s.replicas {
		containers[replica] = s.container(t, replica) // a restart keeps the container
	}
	for _, tc := range []struct {
		name    string
		restart func(t *testing.T, replica string)
	}{
		{"ComposeRestart", func(t *testing.T, replica string) {
			s.mustRun(t, 2*time.Minute, "restart", replica)
		}},
		{"DockerRestart", func(t *testing.T, replica string) {
			if out, err := docker("restart", containers[replica]); err != nil {
				t.Fatalf("docker restart %s: %v %s", replica, err, out)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const workers = 8
			res := s.loadDuring(token, workers, func() {
				time.Sleep(time.Second) // load first, as an operator would have it
				for _, replica := range s.replicas {
					before := listening(t, containers[replica])
					started := time.Now()
					tc.restart(t, replica)
					err := poll(30*time.Second, 20*time.Millisecond, func() error {
						if listening(t, containers[replica]) > before {
							return nil
						}
						return fmt.Errorf("%s has not logged \"listening\" again", replica)
					})
					if err != nil {
						t.Fatal(err)
					}
					t.Logf("%s restarted and listening again after %v", replica, time.Since(started).Round(10*time.Millisecond))
				}
				time.Sleep(time.Second)
			})
			t.Logf("restarts of %v under %d workers: %d requests, %d failed, statuses %v, replicas %v",
				s.replicas, workers, res.total, res.failed, res.statuses, res.replicas)
			if res.failed > 0 {
				t.Errorf("rolling restart: got %d of %d requests failed (first: %q), want none", res.failed, res.total, res.first)
			}
			if res.total < 100 {
				t.Errorf("rolling restart: got only %d requests, want a real load", res.total)
			}
		})
	}
}
