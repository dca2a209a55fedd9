// Package scenario holds what the load generator's users do: which request
// each of them sends next, and whether the answer it got is the one the
// contract promises for that user at that moment.
//
// A scenario hands out steps (Next) and learns from their answers (Done),
// both called by many workers at once. Done is where
// correctness is judged: an answer is OK, an error (a status the contract
// allows under load, such as 429 or 503, or no answer at all), or wrong (an
// answer the contract rules out, such as another user's profile or a 401
// for a session that is live).
package scenario

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Kind names a kind of request; the report has one row per kind.
type Kind string

// The kinds of request the scenarios send.
const (
	Login    Kind = "login"
	Profile  Kind = "profile"
	Sessions Kind = "sessions"
	Refresh  Kind = "refresh"
	Logout   Kind = "logout"
	// Get is a plain GET of a fixed path with no session, for measuring
	// what the proxy in front (or a stand-in) can do by itself.
	Get Kind = "get"
)

// Kinds lists every kind in the order reports show them.
var Kinds = []Kind{Login, Profile, Sessions, Refresh, Logout, Get}

// Route is the method and path a kind of request uses.
func (k Kind) Route() (method, path string) {
	switch k {
	case Login:
		return http.MethodPost, "/auth/login"
	case Profile:
		return http.MethodGet, "/profile"
	case Sessions:
		return http.MethodGet, "/auth/sessions"
	case Refresh:
		return http.MethodPost, "/auth/refresh"
	case Logout:
		return http.MethodPost, "/auth/logout"
	}
	return "", ""
}

// Verdict is what Done made of an answer.
type Verdict int

// The verdicts. Wrong is kept apart from Error: a loaded service may refuse
// or fail a request, but it must never answer one falsely.
const (
	OK Verdict = iota
	Error
	Wrong
)

func (v Verdict) String() string {
	return [...]string{"ok", "error", "wrong"}[v]
}

// Step is one request a user is about to send.
type Step struct {
	Kind   Kind
	Target vegeta.Target
	user   *User
	// token is the one the request carries; a refresh replaces it.
	token string
}

// User returns the name of the user who sends the step.
func (s *Step) User() string {
	if s.user == nil {
		return ""
	}
	return s.user.Name
}

// Response is what came back for a step. Status 0 means no HTTP answer at
// all (Err says why).
type Response struct {
	Status int
	Body   []byte
	Err    string
}

// Outcome is the verdict on one answer and, for an error or a wrong answer,
// a short description for the report.
type Outcome struct {
	Verdict Verdict
	Detail  string
}

// A Scenario makes the requests of one kind of load.
type Scenario interface {
	// Name is the scenario's flag value.
	Name() string
	// Next returns the next step. It may be called from many goroutines at
	// once. It returns ErrStopped once Stop was called.
	Next() (*Step, error)
	// Done judges the answer to a step that Next returned and moves its
	// user on. It may be called from many goroutines at once, for
	// different steps.
	Done(*Step, Response) Outcome
	// Stop makes a waiting Next return.
	Stop()
	// Waits counts the steps whose Next had to wait for an idle user.
	Waits() uint64
	// Waiting counts the steps whose Next waits for an idle user now.
	Waiting() int64
}

// ErrStopped is returned by Next after Stop.
var ErrStopped = errors.New("scenario stopped")

// User is one account of the load test and, while it has one, its session.
type User struct {
	Name     string
	Password string
	// Token is the session the user holds, empty when logged out.
	Token string

	creds []byte
	// plan is what the user does in its current session, in order; next
	// indexes it.
	plan []Kind
	next int
}

// NewUser returns a user with its login body prepared once.
func NewUser(name, password string) *User {
	creds, _ := json.Marshal(map[string]string{"username": name, "password": password})
	return &User{Name: name, Password: password, creds: creds}
}

// Endpoints builds the requests of every kind against one base URL.
type Endpoints struct {
	base      string
	userAgent string
}

// BrowserUserAgent is the User-Agent the load generator sends unless told
// otherwise: as long as a desktop browser's, since a session keeps its
// login's User-Agent and its size decides how Redis encodes the session
// (above 64 bytes a hash leaves the compact listpack encoding), and ending
// in "loadtest" so that logs tell the load from people.
const BrowserUserAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 loadtest"

// WithUserAgent returns e sending ua as every request's User-Agent.
func (e Endpoints) WithUserAgent(ua string) Endpoints {
	e.userAgent = ua
	return e
}

// setHeaders sets the headers every request carries.
func (e Endpoints) setHeaders(h http.Header) {
	if e.userAgent != "" {
		h.Set("User-Agent", e.userAgent)
	}
}

// NewEndpoints returns the request builder for the API at base; a trailing
// slash in base is dropped so that "http://host:8080/" works as well.
func NewEndpoints(base string) Endpoints {
	return Endpoints{base: strings.TrimRight(base, "/")}
}

// URL returns the absolute URL of path.
func (e Endpoints) URL(path string) string { return e.base + path }

// target returns the request of kind k for user u with token tok.
func (e Endpoints) target(k Kind, u *User, tok string) vegeta.Target {
	method, path := k.Route()
	t := vegeta.Target{Method: method, URL: e.base + path, Header: http.Header{}}
	e.setHeaders(t.Header)
	if k == Login {
		t.Body = u.creds
		t.Header.Set("Content-Type", "application/json")
	} else {
		t.Header.Set("X-Session-Id", tok)
	}
	return t
}

// New returns the scenario called name over users (already registered; for
// "read", already logged in). The "get" scenario has no users; it sends
// GET getPath and wants a 200.
func New(name string, e Endpoints, users []*User, j Journey, getPath string) (Scenario, error) {
	if name == "get" {
		return &gets{endpoints: e, target: vegeta.Target{Method: http.MethodGet, URL: e.URL(getPath)}}, nil
	}
	if len(users) == 0 {
		return nil, errors.New("a scenario needs at least one user")
	}
	switch name {
	case "read":
		for _, u := range users {
			if u.Token == "" {
				return nil, fmt.Errorf("user %s has no session for the read scenario", u.Name)
			}
		}
		return &reads{endpoints: e, users: users}, nil
	case "login":
		return &logins{endpoints: e, users: users}, nil
	case "mixed", "churn":
		return newJourneys(name, e, users, j), nil
	}
	return nil, fmt.Errorf("unknown scenario %q (want one of %s)", name, strings.Join(Names, ", "))
}

// KindsOf lists the kinds of request the scenario called name sends, in
// report order.
func KindsOf(name string, j Journey) []Kind {
	switch name {
	case "read":
		return []Kind{Profile}
	case "login":
		return []Kind{Login}
	case "get":
		return []Kind{Get}
	}
	ks := []Kind{Login}
	if j.Reads > 0 {
		ks = append(ks, Profile)
	}
	if j.Lists > 0 {
		ks = append(ks, Sessions)
	}
	if j.Refreshes > 0 {
		ks = append(ks, Refresh)
	}
	return append(ks, Logout)
}

// Names lists the scenarios New knows.
var Names = []string{"read", "login", "mixed", "churn", "get"}

// NeedsLogin tells whether the scenario's users must hold a session before
// the timed phase starts.
func NeedsLogin(name string) bool { return name == "read" }

// HasJourneys tells whether the scenario's users go through a Journey,
// which -reads, -lists and -refreshes shape.
func HasJourneys(name string) bool { return name == "mixed" || name == "churn" }

// NeedsUsers tells whether the scenario has users at all.
func NeedsUsers(name string) bool { return name != "get" }

// gets: the same GET again and again, answered by anything that says 200.
type gets struct {
	endpoints Endpoints
	target    vegeta.Target
}

func (s *gets) Name() string   { return "get" }
func (s *gets) Stop()          {}
func (s *gets) Waits() uint64  { return 0 }
func (s *gets) Waiting() int64 { return 0 }

func (s *gets) Next() (*Step, error) {
	t := s.target
	t.Header = http.Header{}
	s.endpoints.setHeaders(t.Header)
	return &Step{Kind: Get, Target: t}, nil
}

func (s *gets) Done(st *Step, r Response) Outcome { return judge(st, r) }

// reads: a pool of logged-in users, each reading its own profile with its
// own token, round robin. Reads of one user may overlap, as a user's tabs do.
type reads struct {
	endpoints Endpoints
	users     []*User
	n         atomic.Uint64
}

func (s *reads) Name() string                      { return "read" }
func (s *reads) Stop()                             {}
func (s *reads) Waits() uint64                     { return 0 }
func (s *reads) Waiting() int64                    { return 0 }
func (s *reads) Done(st *Step, r Response) Outcome { return judge(st, r) }

func (s *reads) Next() (*Step, error) {
	u := s.users[(s.n.Add(1)-1)%uint64(len(s.users))]
	return &Step{Kind: Profile, Target: s.endpoints.target(Profile, u, u.Token), user: u, token: u.Token}, nil
}

// logins: logins of registered users, round robin. The sessions they make
// are left to expire; the per-user cap bounds how many live at once.
type logins struct {
	endpoints Endpoints
	users     []*User
	n         atomic.Uint64
}

func (s *logins) Name() string                      { return "login" }
func (s *logins) Stop()                             {}
func (s *logins) Waits() uint64                     { return 0 }
func (s *logins) Waiting() int64                    { return 0 }
func (s *logins) Done(st *Step, r Response) Outcome { return judge(st, r) }

func (s *logins) Next() (*Step, error) {
	u := s.users[(s.n.Add(1)-1)%uint64(len(s.users))]
	return &Step{Kind: Login, Target: s.endpoints.target(Login, u, ""), user: u}, nil
}

// Journey is what a user of "mixed" or "churn" does in one session: it logs
// in, sends Reads profile reads, Lists session lists and Refreshes token
// refreshes in random order, then logs out.
type Journey struct {
	Reads, Lists, Refreshes int
}

// DefaultJourney is the journey of a scenario when no flag changes it.
func DefaultJourney(name string) Journey {
	if name == "churn" {
		return Journey{Reads: 3}
	}
	return Journey{Reads: 8, Lists: 1, Refreshes: 1}
}

// Plan returns the steps of one session, login first and logout last.
func (j Journey) Plan() []Kind {
	middle := make([]Kind, 0, j.Reads+j.Lists+j.Refreshes)
	for range j.Reads {
		middle = append(middle, Profile)
	}
	for range j.Lists {
		middle = append(middle, Sessions)
	}
	for range j.Refreshes {
		middle = append(middle, Refresh)
	}
	rand.Shuffle(len(middle), func(a, b int) { middle[a], middle[b] = middle[b], middle[a] })
	plan := append([]Kind{Login}, middle...)
	return append(plan, Logout)
}

// journeys: every user goes through its plan one request at a time, as a
// person does; a step waits for an idle user when all are busy, and that
// wait counts in the step's latency (the report says how often it
// happened, so that -users can be raised).
type journeys struct {
	name      string
	endpoints Endpoints
	journey   Journey
	idle      chan *User
	stop      chan struct{}
	stopped   atomic.Bool
	waits     atomic.Uint64
	waiting   atomic.Int64
}

func newJourneys(name string, e Endpoints, users []*User, j Journey) *journeys {
	s := &journeys{name: name, endpoints: e, journey: j, idle: make(chan *User, len(users)), stop: make(chan struct{})}
	for _, u := range users {
		u.Token, u.plan, u.next = "", nil, 0
		s.idle <- u
	}
	return s
}

func (s *journeys) Name() string   { return s.name }
func (s *journeys) Waits() uint64  { return s.waits.Load() }
func (s *journeys) Waiting() int64 { return s.waiting.Load() }

func (s *journeys) Stop() {
	if s.stopped.CompareAndSwap(false, true) {
		close(s.stop)
	}
}

func (s *journeys) Next() (*Step, error) {
	// Once stopped, no step is handed out even to an idle user: the
	// sending is over.
	if s.stopped.Load() {
		return nil, ErrStopped
	}
	var u *User
	select {
	case u = <-s.idle:
	default:
		s.waits.Add(1)
		s.waiting.Add(1)
		select {
		case u = <-s.idle:
			s.waiting.Add(-1)
		case <-s.stop:
			s.waiting.Add(-1)
			return nil, ErrStopped
		}
	}
	if u.Token == "" || u.next >= len(u.plan) {
		u.Token, u.plan, u.next = "", s.journey.Plan(), 0
	}
	k := u.plan[u.next]
	return &Step{Kind: k, Target: s.endpoints.target(k, u, u.Token), user: u, token: u.Token}, nil
}

// Done moves the user on and hands it back to the idle pool. A step that
// failed is not repeated: the user goes on with its plan, except that
// without a session it starts a new one, and after a refresh or logout
// whose fate is unknown it drops the token it can no longer trust. It
// changes only the step's user, which no other step holds until it is back
// in the pool, so that calls for different steps may run at once.
func (s *journeys) Done(st *Step, r Response) Outcome {
	u := st.user
	o := judge(st, r)
	switch {
	case st.Kind == Login && o.Verdict == OK:
		u.Token = loginToken(r.Body)
	case st.Kind == Refresh && o.Verdict == OK:
		u.Token = loginToken(r.Body)
	case st.Kind == Logout && r.Status == http.StatusOK:
		u.Token = ""
	case r.Status == http.StatusUnauthorized:
		// The session is gone (wrongly, judge said so): start anew.
		u.Token = ""
	case (st.Kind == Refresh || st.Kind == Logout) && fateUnknown(r):
		u.Token = ""
	}
	if u.Token != "" {
		u.next++
	}
	s.idle <- u
	return o
}

// fateUnknown tells whether a request may or may not have taken effect:
// no answer, or a 5xx from something in front of the service (a proxy's
// 502 or 504 after the replica rotated the token). The service's own 503
// says it changed nothing.
func fateUnknown(r Response) bool {
	return r.Status == 0 || (r.Status >= 500 && r.Status != http.StatusServiceUnavailable)
}

// judge checks one answer against the contract for the user who asked.
func judge(st *Step, r Response) Outcome {
	switch {
	case r.Status == 0:
		return Outcome{Error, "no answer: " + r.Err}
	case r.Status == http.StatusTooManyRequests, r.Status >= 500:
		// Refusals the contract allows under load (rate limit, busy
		// hasher, store unavailable) and proxy errors.
		return Outcome{Error, fmt.Sprintf("%d %s", r.Status, errorMessage(r.Body))}
	}
	switch st.Kind {
	case Login:
		if r.Status == http.StatusUnauthorized {
			return Outcome{Wrong, "login of a registered user refused: " + errorMessage(r.Body)}
		}
		if r.Status != http.StatusOK {
			return unexpected(r)
		}
		if !validToken(loginToken(r.Body)) {
			return Outcome{Wrong, "login answered 200 without a valid sessionId"}
		}
	case Refresh:
		if r.Status == http.StatusUnauthorized {
			return liveRefused(r)
		}
		if r.Status != http.StatusOK {
			return unexpected(r)
		}
		if tok := loginToken(r.Body); !validToken(tok) || tok == st.token {
			return Outcome{Wrong, "refresh answered 200 without a new sessionId"}
		}
	case Profile:
		if r.Status == http.StatusUnauthorized {
			return liveRefused(r)
		}
		if r.Status != http.StatusOK {
			return unexpected(r)
		}
		var p struct {
			Username string `json:"username"`
		}
		if err := json.Unmarshal(r.Body, &p); err != nil {
			return Outcome{Wrong, "profile body is not JSON"}
		}
		if !sameUser(p.Username, st.User()) {
			// Never print the other user's name next to a token: the
			// report names only who asked.
			return Outcome{Wrong, "profile of another user returned"}
		}
	case Sessions:
		if r.Status == http.StatusUnauthorized {
			return liveRefused(r)
		}
		if r.Status != http.StatusOK {
			return unexpected(r)
		}
		var l struct {
			Sessions []struct {
				ID      string `json:"id"`
				Current bool   `json:"current"`
			} `json:"sessions"`
		}
		if err := json.Unmarshal(r.Body, &l); err != nil {
			return Outcome{Wrong, "session list is not JSON"}
		}
		current := 0
		for _, s := range l.Sessions {
			if s.Current {
				current++
			}
		}
		if current != 1 {
			return Outcome{Wrong, fmt.Sprintf("session list marks %d sessions current, want 1", current)}
		}
	case Logout:
		if r.Status == http.StatusUnauthorized {
			return liveRefused(r)
		}
		if r.Status != http.StatusOK {
			return unexpected(r)
		}
	case Get:
		if r.Status != http.StatusOK {
			return unexpected(r)
		}
	}
	return Outcome{Verdict: OK}
}

// sameUser tells whether two usernames are one user to the API: its
// usernames are unique regardless of case, and /profile returns the name
// as registered, which may differ in case from the one logged in with.
func sameUser(a, b string) bool {
	return canonicalUsername(a) == canonicalUsername(b)
}

// canonicalUsername is the API's fold of a username (its
// session.CanonicalUsername). Not strings.EqualFold, which also folds
// names the API keeps apart, such as "ſam" and "sam".
func canonicalUsername(name string) string {
	return strings.ToLower(name)
}

func liveRefused(r Response) Outcome {
	return Outcome{Wrong, "live session refused: " + errorMessage(r.Body)}
}

func unexpected(r Response) Outcome {
	return Outcome{Wrong, fmt.Sprintf("unexpected status %d %s", r.Status, errorMessage(r.Body))}
}

// errorMessage returns the "error" member of a body, or "" when it has none.
func errorMessage(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return e.Error
}

func loginToken(body []byte) string {
	var l struct {
		SessionID string `json:"sessionId"`
	}
	if json.Unmarshal(body, &l) != nil {
		return ""
	}
	return l.SessionID
}

// validToken applies the contract's token form: 22 to 128 characters of
// A-Z a-z 0-9 _ -.
func validToken(s string) bool {
	if len(s) < 22 || len(s) > 128 {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
