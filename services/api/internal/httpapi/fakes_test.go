package httpapi_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"redis-session-app/services/api/internal/httpapi"
	"redis-session-app/services/api/internal/logbuf"
	"redis-session-app/services/api/internal/metrics"
	"redis-session-app/services/api/internal/session"
)

// fakeStore keeps sessions in memory. err, when set, is returned by every
// method, as a store in an outage would.
type fakeStore struct {
	mu       sync.Mutex
	now      func() time.Time
	byToken  map[string]string // token -> session id
	sessions map[string]session.Session
	err      error
	capped   int
	calls    int
	// failAfter lets that many calls through before err applies.
	failAfter int
	// listEmpty makes List return nil.
	listEmpty bool
	// panicOnLookup makes Lookup panic, to exercise the recovery.
	panicOnLookup bool
}

var _ session.Store = (*fakeStore)(nil)

func newFakeStore(now func() time.Time) *fakeStore {
	return &fakeStore{now: now, byToken: map[string]string{}, sessions: map[string]session.Session{}}
}

func (s *fakeStore) begin() error {
	s.mu.Lock()
	s.calls++
	if s.calls <= s.failAfter {
		return nil
	}
	return s.err
}

func (s *fakeStore) Create(_ context.Context, ns session.NewSession) (session.Issued, int, error) {
	defer s.mu.Unlock()
	if err := s.begin(); err != nil {
		return session.Issued{}, 0, err
	}
	return s.create(ns), s.capped, nil
}

func (s *fakeStore) create(ns session.NewSession) session.Issued {
	now := s.now()
	sess := session.Session{
		ID:                mustRandom(8),
		UserID:            ns.UserID,
		Username:          ns.Username,
		CreatedAt:         now,
		LastSeenAt:        now,
		ExpiresAt:         now.Add(time.Hour),
		AbsoluteExpiresAt: now.Add(24 * time.Hour),
		UserAgent:         ns.UserAgent,
		IP:                ns.IP,
	}
	tok := mustRandom(32)
	s.byToken[tok] = sess.ID
	s.sessions[sess.ID] = sess
	return session.Issued{Token: tok, Session: sess}
}

func (s *fakeStore) Lookup(_ context.Context, token string) (session.Session, error) {
	defer s.mu.Unlock()
	if err := s.begin(); err != nil {
		return session.Session{}, err
	}
	if s.panicOnLookup {
		panic("lookup exploded")
	}
	id, ok := s.byToken[token]
	if !ok {
		return session.Session{}, session.ErrNotFound
	}
	return s.sessions[id], nil
}

func (s *fakeStore) Refresh(_ context.Context, token string) (session.Issued, error) {
	defer s.mu.Unlock()
	if err := s.begin(); err != nil {
		return session.Issued{}, err
	}
	id, ok := s.byToken[token]
	if !ok {
		return session.Issued{}, session.ErrNotFound
	}
	delete(s.byToken, token)
	tok := mustRandom(32)
	s.byToken[tok] = id
	sess := s.sessions[id]
	sess.ExpiresAt = s.now().Add(time.Hour)
	s.sessions[id] = sess
	return session.Issued{Token: tok, Session: sess}, nil
}

func (s *fakeStore) Revoke(_ context.Context, token string) error {
	defer s.mu.Unlock()
	if err := s.begin(); err != nil {
		return err
	}
	id, ok := s.byToken[token]
	if !ok {
		return session.ErrNotFound
	}
	delete(s.byToken, token)
	delete(s.sessions, id)
	return nil
}

func (s *fakeStore) RevokeAll(_ context.Context, token string) (int, error) {
	defer s.mu.Unlock()
	if err := s.begin(); err != nil {
		return 0, err
	}
	caller, ok := s.byToken[token]
	if !ok {
		return 0, session.ErrNotFound
	}
	userID := s.sessions[caller].UserID
	n := 0
	for tok, id := range s.byToken {
		if s.sessions[id].UserID == userID {
			delete(s.byToken, tok)
			delete(s.sessions, id)
			n++
		}
	}
	return n, nil
}

func (s *fakeStore) RevokeByID(_ context.Context, token, id string) error {
	defer s.mu.Unlock()
	if err := s.begin(); err != nil {
		return err
	}
	caller, ok := s.sessions[s.byToken[token]]
	if !ok {
		return session.ErrCallerGone
	}
	userID := caller.UserID
	sess, ok := s.sessions[id]
	if !ok || sess.UserID != userID {
		return session.ErrNotFound
	}
	for tok, sid := range s.byToken {
		if sid == id {
			delete(s.byToken, tok)
		}
	}
	delete(s.sessions, id)
	return nil
}

func (s *fakeStore) List(_ context.Context, userID string) ([]session.Session, error) {
	defer s.mu.Unlock()
	if err := s.begin(); err != nil {
		return nil, err
	}
	if s.listEmpty {
		return nil, nil
	}
	var out []session.Session
	for _, sess := range s.sessions {
		if sess.UserID == userID {
			out = append(out, sess)
		}
	}
	slices.SortFunc(out, func(a, b session.Session) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

func (s *fakeStore) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// fakeUsers keeps users in memory, by canonical name. Like the real store,
// it makes an id for a user created without one.
type fakeUsers struct {
	mu    sync.Mutex
	users map[string]session.User
	err   error
	// created holds every user passed to CreateUser, as passed.
	created []session.User
}

var _ session.UserStore = (*fakeUsers)(nil)

func (u *fakeUsers) CreateUser(_ context.Context, user session.User) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.created = append(u.created, user)
	if u.err != nil {
		return u.err
	}
	k := session.CanonicalUsername(user.Username)
	if _, ok := u.users[k]; ok {
		return session.ErrUsernameTaken
	}
	if user.ID == "" {
		user.ID = mustRandom(8)
	}
	u.users[k] = user
	return nil
}

func (u *fakeUsers) UserByName(_ context.Context, name string) (session.User, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err != nil {
		return session.User{}, u.err
	}
	user, ok := u.users[session.CanonicalUsername(name)]
	if !ok {
		return session.User{}, session.ErrNotFound
	}
	return user, nil
}

// fakeHasher "hashes" by prefixing, and records what it was asked.
type fakeHasher struct {
	mu       sync.Mutex
	err      error
	hashed   int
	verified []string // the encoded hashes Verify was given
}

var _ httpapi.PasswordHasher = (*fakeHasher)(nil)

func (h *fakeHasher) Hash(_ context.Context, pw string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hashed++
	if h.err != nil {
		return "", h.err
	}
	return "hash:" + pw, nil
}

func (h *fakeHasher) Verify(_ context.Context, pw, encoded string) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.verified = append(h.verified, encoded)
	if h.err != nil {
		return false, h.err
	}
	return encoded != "" && encoded == "hash:"+pw, nil
}

// fakeLimiter answers with decision (allowed when zero) or err, and records
// each attempt as "login|ip|username", "register|ip" or "sessions|userID".
type fakeLimiter struct {
	mu       sync.Mutex
	decision *session.RateDecision
	err      error
	attempts []string
}

var _ httpapi.RateLimiter = (*fakeLimiter)(nil)

func (l *fakeLimiter) answer(rec string) (session.RateDecision, error) {
	l.attempts = append(l.attempts, rec)
	if l.err != nil {
		return session.RateDecision{}, l.err
	}
	if l.decision != nil {
		return *l.decision, nil
	}
	return session.RateDecision{Allowed: true}, nil
}

func (l *fakeLimiter) AllowLogin(_ context.Context, ip, username string) (session.RateDecision, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.answer("login|" + ip + "|" + username)
}

func (l *fakeLimiter) AllowRegister(_ context.Context, ip string) (session.RateDecision, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.answer("register|" + ip)
}

func (l *fakeLimiter) AllowSessions(_ context.Context, userID string) (session.RateDecision, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.answer("sessions|" + userID)
}

func (l *fakeLimiter) ChargeListing(context.Context, string, int) error { return nil }

func (l *fakeLimiter) RefundLogin(context.Context, string, string) {}
func (l *fakeLimiter) RefundRegister(context.Context, string)      {}
func (l *fakeLimiter) RefundSessions(context.Context, string)      {}

func mustRandom(n int) string {
	s, err := session.RandomString(n)
	if err != nil {
		panic(err)
	}
	return s
}

// unavailable is what the stores wrap when Redis is down.
var errRedisDown = errors.Join(session.ErrUnavailable, errors.New("dial tcp 127.0.0.1:6379: connection refused"))

// harness is one server on fakes, with its metrics on a fresh registry.
type harness struct {
	router   http.Handler
	deps     httpapi.Deps
	store    *fakeStore
	users    *fakeUsers
	hasher   *fakeHasher
	limiter  *fakeLimiter
	reg      *prometheus.Registry
	metrics  *metrics.Metrics
	logs     *logbuf.Buffer
	now      time.Time
	ready    error
	draining bool
}

const testInstance = "replica-7"

func newHarness(t testing.TB, opts ...func(*httpapi.Deps)) *harness {
	t.Helper()
	h := &harness{
		now:     time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC),
		users:   &fakeUsers{users: map[string]session.User{}},
		hasher:  &fakeHasher{},
		limiter: &fakeLimiter{},
		reg:     prometheus.NewRegistry(),
		logs:    &logbuf.Buffer{},
	}
	h.store = newFakeStore(func() time.Time { return h.now })
	h.metrics = metrics.New(h.reg, "test", "abc")
	h.deps = httpapi.Deps{
		Logger:       slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Sessions:     h.store,
		Users:        h.users,
		Passwords:    h.hasher,
		Limiter:      h.limiter,
		Ready:        func(context.Context) error { return h.ready },
		Draining:     func() bool { return h.draining },
		Metrics:      h.metrics,
		Gatherer:     h.reg,
		InstanceID:   testInstance,
		CookieSecure: true,
		Now:          func() time.Time { return h.now },
	}
	for _, o := range opts {
		o(&h.deps)
	}
	h.router = httpapi.NewServer(h.deps)
	return h
}

func (h *harness) do(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.router.ServeHTTP(rec, req)
	return rec
}

// addUser registers a user directly in the fake store.
func (h *harness) addUser(t testing.TB, name, password string) session.User {
	t.Helper()
	u := session.User{ID: mustRandom(8), Username: name, PasswordHash: "hash:" + password}
	if err := h.users.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("adding user: %v", err)
	}
	return u
}

// addSession opens a session for u directly in the fake store and returns
// its token.
func (h *harness) addSession(u session.User, ua string) session.Issued {
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	return h.store.create(session.NewSession{UserID: u.ID, Username: u.Username, UserAgent: ua, IP: "192.0.2.1"})
}

// newSignedIn is a harness on fakes whose user alice holds one session, and
// that session's token.
func newSignedIn(t testing.TB) (*harness, session.User, string) {
	t.Helper()
	h := newHarness(t)
	u := h.addUser(t, "alice", "correct horse")
	return h, u, h.addSession(u, "ua").Token
}

func newRequest(method, target, body string) *http.Request {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	req.RemoteAddr = "192.0.2.10:54321"
	return req
}

func authed(req *http.Request, token string) *http.Request {
	req.Header.Set("X-Session-Id", token)
	return req
}
