package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
)

// client speaks the API's HTTP contract to one container through its port
// published on 127.0.0.1: a replica directly, or nginx.
type client struct {
	name    string
	replica bool // a replica directly: every answer must carry X-Instance: name
	ctr     testcontainers.Container
	port    string // the container's port

	mu   sync.Mutex
	base string // http://127.0.0.1:<published port>

	http *http.Client
}

func newClient(t *testing.T, name string, ctr testcontainers.Container, port string) *client {
	t.Helper()
	c := &client{
		name: name,
		ctr:  ctr,
		port: port,
		http: &http.Client{
			// Longer than any request may take through nginx (a login at
			// most 16 s, see nginx.conf), so a slow answer is measured
			// rather than cut off.
			Timeout: 20 * time.Second,
			Transport: &http.Transport{
				Proxy:               nil,
				MaxIdleConnsPerHost: 64,
				IdleConnTimeout:     30 * time.Second,
			},
		},
	}
	c.refresh(t)
	return c
}

// refresh reads the published port again; it changes when the container
// restarts or its networks change.
func (c *client) refresh(t *testing.T) {
	t.Helper()
	var base string
	eventually(t, 10*time.Second, "published port of "+c.name, func() error {
		p, err := c.ctr.MappedPort(context.Background(), c.port)
		if err != nil {
			return err
		}
		base = fmt.Sprintf("http://127.0.0.1:%d", p.Num())
		return nil
	})
	c.mu.Lock()
	c.base = base
	c.mu.Unlock()
	c.http.CloseIdleConnections()
}

func (c *client) url(path string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base + path
}

// response is what one request got.
type response struct {
	status  int
	header  http.Header
	body    []byte
	elapsed time.Duration
}

// instance is the replica that answered (X-Instance).
func (r response) instance() string { return r.header.Get("X-Instance") }

// errorMessage is the "error" member of an error body.
func (r response) errorMessage() string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Error
}

func (r response) String() string {
	return fmt.Sprintf("%d from %q: %s", r.status, r.instance(), strings.TrimSpace(string(r.body)))
}

// do sends one request, with body as JSON; token, when set, goes in
// X-Session-Id.
func (c *client) do(ctx context.Context, method, path, token string, body any) (response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(b)
	}
	return c.send(ctx, method, path, token, rd)
}

// send is do with the body as it is; nil for none.
func (c *client) send(ctx context.Context, method, path, token string, body io.Reader) (response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url(path), body)
	if err != nil {
		return response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Session-Id", token)
	}
	began := time.Now()
	res, err := c.http.Do(req)
	if err != nil {
		return response{elapsed: time.Since(began)}, fmt.Errorf("%s %s via %s: %w", method, path, c.name, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	r := response{status: res.StatusCode, header: res.Header, body: b, elapsed: time.Since(began)}
	if err != nil {
		return r, fmt.Errorf("%s %s via %s: reading the body: %w", method, path, c.name, err)
	}
	return r, nil
}

// call is do for a test: a transport error fails it.
func (c *client) call(t testing.TB, method, path, token string, body any) response {
	t.Helper()
	r, err := c.do(context.Background(), method, path, token, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// credentials of a user the suite registers.
type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// newUser returns credentials with a name no other case or run uses.
func newUser(t testing.TB, prefix string) credentials {
	t.Helper()
	return credentials{Username: prefix + "-" + randomHex(t, 4), Password: "correct horse battery staple"}
}

// register creates the user; it must not exist yet.
func (c *client) register(t testing.TB, u credentials) {
	t.Helper()
	if r := c.call(t, http.MethodPost, "/auth/register", "", u); r.status != http.StatusCreated {
		t.Fatalf("register %s via %s: got %v, want 201", u.Username, c.name, r)
	}
}

// login returns a new session's token.
func (c *client) login(t testing.TB, u credentials) string {
	t.Helper()
	r := c.call(t, http.MethodPost, "/auth/login", "", u)
	if r.status != http.StatusOK {
		t.Fatalf("login %s via %s: got %v, want 200", u.Username, c.name, r)
	}
	return tokenOf(t, r)
}

// tokenOf reads the token of a login or refresh answer.
func tokenOf(t testing.TB, r response) string {
	t.Helper()
	token, err := sessionID(r)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// expiresAtOf reads the expiresAt of a login or refresh answer.
func expiresAtOf(t testing.TB, r response) time.Time {
	t.Helper()
	var got struct {
		ExpiresAt string `json:"expiresAt"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("%v: %v", err, r)
	}
	at, err := time.Parse(time.RFC3339, got.ExpiresAt)
	if err != nil {
		t.Fatalf("expiresAt of %v: %v", r, err)
	}
	return at
}

func sessionID(r response) (string, error) {
	var got struct {
		SessionID string `json:"sessionId"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil || got.SessionID == "" {
		return "", fmt.Errorf("no sessionId in %v", r)
	}
	return got.SessionID, nil
}

// profileOf checks that a /profile answer is 200 for username.
func profileOf(r response, username string) error {
	if r.status != http.StatusOK {
		return fmt.Errorf("GET /profile: got %v, want 200", r)
	}
	var got struct {
		Username string `json:"username"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		return fmt.Errorf("GET /profile: %v: %v", err, r)
	}
	if got.Username != username {
		return fmt.Errorf("GET /profile: got user %q, want %q (%v)", got.Username, username, r)
	}
	return nil
}

// profile fails the test unless the token is u's live session here.
func (c *client) profile(t testing.TB, token, username string) {
	t.Helper()
	r := c.call(t, http.MethodGet, "/profile", token, nil)
	if err := profileOf(r, username); err != nil {
		t.Fatalf("via %s: %v", c.name, err)
	}
	if c.replica && r.instance() != c.name {
		t.Fatalf("GET /profile via %s answered by %q", c.name, r.instance())
	}
}

// rejected fails the test unless the token is refused here as the
// contract says a dead session is: 401 Invalid session.
func (c *client) rejected(t testing.TB, token string) {
	t.Helper()
	r := c.call(t, http.MethodGet, "/profile", token, nil)
	if r.status != http.StatusUnauthorized || r.errorMessage() != "Invalid session" {
		t.Fatalf("GET /profile via %s with a dead token: got %v, want 401 Invalid session", c.name, r)
	}
}

// session is one element of GET /auth/sessions.
type session struct {
	ID      string `json:"id"`
	Current bool   `json:"current"`
}

func (c *client) sessions(t testing.TB, token string) []session {
	t.Helper()
	r := c.call(t, http.MethodGet, "/auth/sessions", token, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /auth/sessions via %s: got %v, want 200", c.name, r)
	}
	var got struct {
		Sessions []session `json:"sessions"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("GET /auth/sessions via %s: %v: %v", c.name, err, r)
	}
	return got.Sessions
}

// ready reports whether /readyz answers 200.
func (c *client) ready(t testing.TB) response {
	t.Helper()
	return c.call(t, http.MethodGet, "/readyz", "", nil)
}

// eventuallyNotReady waits until /readyz answers 503. Readiness comes from
// a background probe of Redis (every second, 500 ms each), so it may lag
// an outage by that much; the routes that need Redis do not.
func (c *client) eventuallyNotReady(t testing.TB) {
	t.Helper()
	eventually(t, 5*time.Second, c.name+" not ready", func() error {
		if r := c.ready(t); r.status != http.StatusServiceUnavailable {
			return fmt.Errorf("GET /readyz: got %v, want 503", r)
		}
		return nil
	})
}

// trickle is a JSON body that arrives in pieces, gap apart, as from a
// client on a slow link. It has no length, so Go's client sends it
// chunked and flushes each piece: nginx cannot hold it whole and streams
// it to the replica as it comes, and the request is in flight there until
// its last piece.
type trickle struct {
	pieces []string
	gap    time.Duration
	sent   int
}

// newTrickle is "{ }" in four pieces spread over d.
func newTrickle(d time.Duration) *trickle {
	return &trickle{pieces: []string{"{", " ", " ", "}"}, gap: d / 3}
}

func (b *trickle) Read(p []byte) (int, error) {
	if b.sent == len(b.pieces) {
		return 0, io.EOF
	}
	if b.sent > 0 {
		time.Sleep(b.gap) // the link's pace, not a wait for a condition
	}
	n := copy(p, b.pieces[b.sent])
	b.sent++
	return n, nil
}
