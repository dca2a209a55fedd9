package scenario

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Setup prepares the users of a run before the clock starts: it registers
// them and, when login is set, logs each in once. An existing account of
// the same name is reused once its password is known to be the load
// test's: the login does that, and without login set one login checks it
// and a logout ends that session again. It waits out 429s as their
// Retry-After says and tells log each time, since a deployment with the
// default login limits makes this slow. It gives up at Deadline.
type Setup struct {
	Client    *http.Client
	Endpoints Endpoints
	// Parallel is how many requests are in flight at once.
	Parallel int
	// Deadline bounds the whole set-up: its requests as well as its waits.
	Deadline time.Time
	Log      io.Writer

	logMu   sync.Mutex
	lastLog time.Time

	// Parallel requests often wait out the same limit at once: what is
	// reported is the time during which any of them waited, not the sum.
	waitMu     sync.Mutex
	waiting    int
	waitSince  time.Time
	waitedWall time.Duration
}

// SetupReport says what Setup did.
type SetupReport struct {
	Registered, Existing, LoggedIn int
	// Checked counts the existing accounts whose password a login and a
	// logout checked (without login set).
	Checked int
	// Waited is the wall time during which some request waited out a
	// Retry-After.
	Waited time.Duration
	Took   time.Duration
}

// errDeadline is why a request or a wait was cut short at the deadline.
var errDeadline = errors.New("the set-up deadline (-setup-timeout) passed")

// Run registers (and maybe logs in) every user.
func (s *Setup) Run(ctx context.Context, users []*User, login bool) (SetupReport, error) {
	start := time.Now()
	var (
		rep      SetupReport
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		work     = make(chan *User)
	)
	// The deadline is the context's, so that it also cuts short a request
	// to a target that never answers, not only a wait for a Retry-After.
	ctx, cancel := context.WithDeadlineCause(ctx, s.Deadline, errDeadline)
	defer cancel()
	for range max(1, s.Parallel) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range work {
				created, err := s.prepare(ctx, u, login)
				mu.Lock()
				switch {
				case err != nil && firstErr == nil:
					firstErr = err
					cancel()
				case err == nil && created:
					rep.Registered++
				case err == nil:
					rep.Existing++
					if !login {
						rep.Checked++
					}
				}
				if err == nil && login {
					rep.LoggedIn++
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, u := range users {
		select {
		case work <- u:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	rep.Waited = s.waitedWall
	rep.Took = time.Since(start)
	if firstErr == nil && ctx.Err() != nil {
		firstErr = context.Cause(ctx)
	}
	return rep, firstErr
}

// prepare registers u and, if login is set, logs it in and keeps its token.
// Without login set, an account that existed is logged in once all the
// same, and out again: with another password than the load test's, every
// login of the timed phase would be refused and counted as a wrong answer.
func (s *Setup) prepare(ctx context.Context, u *User, login bool) (created bool, err error) {
	status, _, err := s.post(ctx, "/auth/register", u.creds, "", http.StatusCreated, http.StatusConflict)
	if err != nil {
		return false, fmt.Errorf("registering %s: %w", u.Name, err)
	}
	created = status == http.StatusCreated
	if !login && created {
		return true, nil
	}
	what := "logging in " + u.Name
	if !login {
		what = "checking the password of the existing account " + u.Name
	}
	loginStatus, body, err := s.post(ctx, "/auth/login", u.creds, "", http.StatusOK)
	if loginStatus == http.StatusUnauthorized {
		// The account exists (registering it found it) but refused the
		// password the load test gives it.
		return false, fmt.Errorf("%s (an account of that name with another password? choose another -user-prefix): %w", what, err)
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	tok := loginToken(body)
	if !validToken(tok) {
		return false, fmt.Errorf("%s: no valid sessionId in the answer", what)
	}
	if login {
		u.Token = tok
		return created, nil
	}
	// The check's session is none of the run's: it goes again.
	if _, _, err := s.post(ctx, "/auth/logout", nil, tok, http.StatusOK); err != nil {
		return false, fmt.Errorf("logging out the session that checked %s's password: %w", u.Name, err)
	}
	return false, nil
}

// post sends body (JSON, if any) to path, with the session token when one
// is given, until it gets one of the wanted statuses, waiting out 429 and
// 503 answers that carry a Retry-After. When it gives up on an answer it
// returns that answer's status with the error, else 0.
func (s *Setup) post(ctx context.Context, path string, body []byte, token string, want ...int) (int, []byte, error) {
	url := s.Endpoints.URL(path)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("X-Session-Id", token)
		}
		s.Endpoints.setHeaders(req.Header)
		resp, err := s.Client.Do(req)
		if err != nil {
			return 0, nil, pastDeadline(ctx, path, err)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		for _, w := range want {
			if resp.StatusCode == w {
				return w, b, nil
			}
		}
		retryAfter := resp.Header.Get("Retry-After")
		d, ok := retryWait(retryAfter, time.Now())
		retriable := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable
		if !retriable || !ok {
			return resp.StatusCode, nil, fmt.Errorf("POST %s: got status %d %s, want %v", path, resp.StatusCode, errorMessage(b), want)
		}
		if d > time.Until(s.Deadline) {
			return resp.StatusCode, nil, fmt.Errorf("POST %s: got status %d with Retry-After %s, past the set-up deadline", path, resp.StatusCode, retryAfter)
		}
		s.say(fmt.Sprintf("set-up: POST %s answered %d %s; waiting %s as Retry-After says (raise LOGIN_LIMIT_PER_IP on the target to go faster)",
			path, resp.StatusCode, errorMessage(b), d.Round(time.Second)))
		if err := s.wait(ctx, d); err != nil {
			return 0, nil, pastDeadline(ctx, path, err)
		}
	}
}

// minRetryWait is the shortest wait for a Retry-After: "0", or a date
// already past, asks for none, and retrying at once would send the set-up's
// requests in a tight loop at a target that is refusing them.
const minRetryWait = time.Second

// retryWait is how long a Retry-After value (delay-seconds or an
// HTTP-date) asks to wait from now, at least minRetryWait; ok is false
// when the value is neither. Seconds too many for a time.Duration are
// the longest one, which is past any set-up deadline, instead of
// wrapping round to a negative wait.
func retryWait(value string, now time.Time) (d time.Duration, ok bool) {
	value = strings.TrimSpace(value)
	if value != "" && strings.Trim(value, "0123456789") == "" {
		secs, err := strconv.ParseUint(value, 10, 64)
		if err != nil || secs > uint64(math.MaxInt64/int64(time.Second)) {
			return math.MaxInt64, true // too many digits for uint64 as well
		}
		d = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(value); err == nil {
		d = at.Sub(now)
	} else {
		return 0, false
	}
	return max(d, minRetryWait), true
}

// pastDeadline says so when err is the set-up deadline's doing: Go's
// "context deadline exceeded" names neither the deadline nor its flag.
func pastDeadline(ctx context.Context, path string, err error) error {
	if context.Cause(ctx) == errDeadline {
		return fmt.Errorf("POST %s: %w", path, errDeadline)
	}
	return err
}

// wait sleeps d, or until ctx is done, counting the wall time waited.
func (s *Setup) wait(ctx context.Context, d time.Duration) error {
	s.waitMu.Lock()
	if s.waiting == 0 {
		s.waitSince = time.Now()
	}
	s.waiting++
	s.waitMu.Unlock()
	defer func() {
		s.waitMu.Lock()
		if s.waiting--; s.waiting == 0 {
			s.waitedWall += time.Since(s.waitSince)
		}
		s.waitMu.Unlock()
	}()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// say logs msg, at most once every few seconds since every parallel
// request may be waiting for the same reason.
func (s *Setup) say(msg string) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if s.Log == nil || time.Since(s.lastLog) < 5*time.Second {
		return
	}
	s.lastLog = time.Now()
	fmt.Fprintln(s.Log, msg)
}

// ReadSessions reads users that already hold sessions, one "USERNAME TOKEN"
// per line, for a read scenario over sessions made some other way (the
// benchmark makes a million of them straight in Redis).
func ReadSessions(r io.Reader) ([]*User, error) {
	var users []*User
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, tok, ok := strings.Cut(line, " ")
		if !ok || !validToken(strings.TrimSpace(tok)) {
			return nil, fmt.Errorf("line %d: want USERNAME TOKEN", n)
		}
		u := NewUser(name, "")
		u.Token = strings.TrimSpace(tok)
		users = append(users, u)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(users) == 0 {
		return nil, errors.New("no sessions")
	}
	return users, nil
}
