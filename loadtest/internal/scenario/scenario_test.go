package scenario_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"redis-session-app/loadtest/internal/poll"
	"redis-session-app/loadtest/internal/scenario"
)

const tokenA = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
const tokenB = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"

func loggedIn(names ...string) []*scenario.User {
	users := make([]*scenario.User, len(names))
	for i, n := range names {
		users[i] = scenario.NewUser(n, "password-"+n)
		users[i].Token = fmt.Sprintf("%s-token-%030d", n, i)
	}
	return users
}

func body(format string, args ...any) []byte { return fmt.Appendf(nil, format, args...) }

func TestEndpointsDropTrailingSlash(t *testing.T) {
	for _, base := range []string{"http://127.0.0.1:8080", "http://127.0.0.1:8080/", "http://127.0.0.1:8080//"} {
		sc, err := scenario.New("read", scenario.NewEndpoints(base), loggedIn("alice"), scenario.Journey{}, "")
		if err != nil {
			t.Fatal(err)
		}
		st, _ := sc.Next()
		if got, want := st.Target.URL, "http://127.0.0.1:8080/profile"; got != want {
			t.Errorf("base %q: got URL %q, want %q", base, got, want)
		}
	}
}

func TestEveryRequestCarriesTheUserAgent(t *testing.T) {
	e := scenario.NewEndpoints("http://127.0.0.1").WithUserAgent("browser-ish")
	for _, name := range scenario.Names {
		sc, err := scenario.New(name, e, loggedIn("alice"), scenario.DefaultJourney(name), "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		st, _ := sc.Next()
		if got := st.Target.Header.Get("User-Agent"); got != "browser-ish" {
			t.Errorf("%s: User-Agent %q, want browser-ish", name, got)
		}
	}
	if n := len(scenario.BrowserUserAgent); n <= 64 {
		t.Errorf("BrowserUserAgent has %d bytes, want more than 64 (as browsers' do)", n)
	}
}

func TestReadUsesEachUsersOwnToken(t *testing.T) {
	users := loggedIn("alice", "bob", "carol")
	sc, err := scenario.New("read", scenario.NewEndpoints("http://127.0.0.1"), users, scenario.Journey{}, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		st, err := sc.Next()
		if err != nil {
			t.Fatal(err)
		}
		u := users[i%3]
		if st.Kind != scenario.Profile || st.User() != u.Name || st.Target.Header.Get("X-Session-Id") != u.Token || st.Target.Method != http.MethodGet {
			t.Errorf("step %d = %s %s by %s with %q, want GET /profile by %s with its token", i, st.Target.Method, st.Kind, st.User(), st.Target.Header.Get("X-Session-Id"), u.Name)
		}
	}
}

func TestReadNeedsLoggedInUsers(t *testing.T) {
	if _, err := scenario.New("read", scenario.NewEndpoints("http://127.0.0.1"), []*scenario.User{scenario.NewUser("a", "b")}, scenario.Journey{}, ""); err == nil {
		t.Error("got no error for a user without a session, want one")
	}
}

func TestJudgeProfile(t *testing.T) {
	tests := []struct {
		name string
		user string // who asks; alice when empty
		resp scenario.Response
		want scenario.Verdict
	}{
		{"OK", "", scenario.Response{Status: 200, Body: body(`{"username":"alice","secretData":"x"}`)}, scenario.OK},
		{"WrongOtherUser", "", scenario.Response{Status: 200, Body: body(`{"username":"bob"}`)}, scenario.Wrong},
		// Usernames are one user regardless of case, and /profile shows
		// the name as registered.
		{"OKRegisteredInOtherCase", "", scenario.Response{Status: 200, Body: body(`{"username":"Alice"}`)}, scenario.OK},
		{"OKLoggedInInOtherCase", "Case-Read-0", scenario.Response{Status: 200, Body: body(`{"username":"case-read-0"}`)}, scenario.OK},
		// The API folds case with strings.ToLower, which keeps the long s
		// apart from s; strings.EqualFold would not.
		{"WrongFoldedOnlyByEqualFold", "sam", scenario.Response{Status: 200, Body: body(`{"username":"\u017fam"}`)}, scenario.Wrong},
		{"WrongNotJSON", "", scenario.Response{Status: 200, Body: body(`<html>`)}, scenario.Wrong},
		{"WrongLiveSessionRefused", "", scenario.Response{Status: 401, Body: body(`{"error":"Invalid session"}`)}, scenario.Wrong},
		{"WrongRedirect", "", scenario.Response{Status: 302}, scenario.Wrong},
		{"WrongNotFound", "", scenario.Response{Status: 404, Body: body(`{"error":"Not found"}`)}, scenario.Wrong},
		{"ErrorUnavailable", "", scenario.Response{Status: 503, Body: body(`{"error":"Session store unavailable"}`)}, scenario.Error},
		{"ErrorBadGateway", "", scenario.Response{Status: 502}, scenario.Error},
		{"ErrorRateLimited", "", scenario.Response{Status: 429}, scenario.Error},
		{"ErrorNoAnswer", "", scenario.Response{Err: "connection refused"}, scenario.Error},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			user := cmp.Or(tc.user, "alice")
			sc, _ := scenario.New("read", scenario.NewEndpoints("http://127.0.0.1"), loggedIn(user), scenario.Journey{}, "")
			st, _ := sc.Next()
			if got := sc.Done(st, tc.resp); got.Verdict != tc.want {
				t.Errorf("Done(%d %s) = %v (%s), want %v", tc.resp.Status, tc.resp.Body, got.Verdict, got.Detail, tc.want)
			}
		})
	}
}

func TestJudgeLogin(t *testing.T) {
	tests := []struct {
		name string
		resp scenario.Response
		want scenario.Verdict
	}{
		{"OK", scenario.Response{Status: 200, Body: body(`{"message":"Logged in","sessionId":%q}`, tokenA)}, scenario.OK},
		{"WrongNoToken", scenario.Response{Status: 200, Body: body(`{"message":"Logged in"}`)}, scenario.Wrong},
		{"WrongMalformedToken", scenario.Response{Status: 200, Body: body(`{"sessionId":"short"}`)}, scenario.Wrong},
		{"WrongCredentialsRefused", scenario.Response{Status: 401, Body: body(`{"error":"Invalid credentials"}`)}, scenario.Wrong},
		{"ErrorBusy", scenario.Response{Status: 503, Body: body(`{"error":"Server busy"}`)}, scenario.Error},
		{"ErrorRateLimited", scenario.Response{Status: 429, Body: body(`{"error":"Too many requests"}`)}, scenario.Error},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			users := []*scenario.User{scenario.NewUser("alice", "password-alice")}
			sc, _ := scenario.New("login", scenario.NewEndpoints("http://127.0.0.1"), users, scenario.Journey{}, "")
			st, _ := sc.Next()
			if st.Target.Method != http.MethodPost || string(st.Target.Body) != `{"password":"password-alice","username":"alice"}` {
				t.Fatalf("login step = %s %s, want POST with alice's credentials", st.Target.Method, st.Target.Body)
			}
			if got := sc.Done(st, tc.resp); got.Verdict != tc.want {
				t.Errorf("Done(%d %s) = %v (%s), want %v", tc.resp.Status, tc.resp.Body, got.Verdict, got.Detail, tc.want)
			}
		})
	}
}

func TestJourneyPlan(t *testing.T) {
	j := scenario.Journey{Reads: 5, Lists: 2, Refreshes: 1}
	for range 20 {
		plan := j.Plan()
		if len(plan) != 10 || plan[0] != scenario.Login || plan[9] != scenario.Logout {
			t.Fatalf("plan %v: want login, 8 steps, logout", plan)
		}
		count := map[scenario.Kind]int{}
		for _, k := range plan[1:9] {
			count[k]++
		}
		if count[scenario.Profile] != 5 || count[scenario.Sessions] != 2 || count[scenario.Refresh] != 1 {
			t.Fatalf("plan %v: got %v in the middle, want 5 reads, 2 lists, 1 refresh", plan, count)
		}
	}
}

// answer plays a well-behaved service for one journey step.
func answer(st *scenario.Step, newToken string) scenario.Response {
	switch st.Kind {
	case scenario.Login, scenario.Refresh:
		return scenario.Response{Status: 200, Body: body(`{"sessionId":%q}`, newToken)}
	case scenario.Profile:
		return scenario.Response{Status: 200, Body: body(`{"username":%q}`, st.User())}
	case scenario.Sessions:
		return scenario.Response{Status: 200, Body: body(`{"sessions":[{"id":"x","current":true},{"id":"y","current":false}]}`)}
	}
	return scenario.Response{Status: 200, Body: body(`{"message":"Logged out"}`)}
}

func TestJourneyGoesThroughWholeSessions(t *testing.T) {
	j := scenario.Journey{Reads: 3, Lists: 1, Refreshes: 1}
	users := []*scenario.User{scenario.NewUser("alice", "pw-alice-1")}
	sc, err := scenario.New("mixed", scenario.NewEndpoints("http://127.0.0.1"), users, j, "")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []scenario.Kind
	want := "" // the token the next authenticated step must carry
	for i := range 14 {
		st, err := sc.Next()
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, st.Kind)
		if st.Kind != scenario.Login {
			if got := st.Target.Header.Get("X-Session-Id"); got != want {
				t.Fatalf("step %d (%s) carries token %q, want %q", i, st.Kind, got, want)
			}
		}
		tok := fmt.Sprintf("token-%026d", i)
		if o := sc.Done(st, answer(st, tok)); o.Verdict != scenario.OK {
			t.Fatalf("step %d (%s): verdict %v (%s), want ok", i, st.Kind, o.Verdict, o.Detail)
		}
		if st.Kind == scenario.Login || st.Kind == scenario.Refresh {
			want = tok
		}
	}
	// Two sessions of seven steps each: login, 5 in the middle, logout.
	for _, at := range []int{0, 7} {
		if kinds[at] != scenario.Login || kinds[at+6] != scenario.Logout {
			t.Errorf("steps %v: want a login at %d and a logout at %d", kinds, at, at+6)
		}
	}
}

func TestJourneyRefreshMustChangeToken(t *testing.T) {
	j := scenario.Journey{Refreshes: 1}
	sc, _ := scenario.New("mixed", scenario.NewEndpoints("http://127.0.0.1"), []*scenario.User{scenario.NewUser("alice", "pw-alice-1")}, j, "")
	st, _ := sc.Next()
	sc.Done(st, answer(st, tokenA))
	st, _ = sc.Next()
	if st.Kind != scenario.Refresh {
		t.Fatalf("second step is %s, want refresh", st.Kind)
	}
	if o := sc.Done(st, answer(st, tokenA)); o.Verdict != scenario.Wrong {
		t.Errorf("refresh that kept the token: verdict %v, want wrong", o.Verdict)
	}
}

func TestJourneyStartsOverWithoutSession(t *testing.T) {
	tests := []struct {
		name string
		kind scenario.Kind
		resp scenario.Response
		want scenario.Verdict
	}{
		{"LiveSessionRefused", scenario.Profile, scenario.Response{Status: 401, Body: body(`{"error":"Invalid session"}`)}, scenario.Wrong},
		{"RefreshUnanswered", scenario.Refresh, scenario.Response{Err: "timeout"}, scenario.Error},
		// The proxy gave up, but the replica may have rotated the token.
		{"RefreshBadGateway", scenario.Refresh, scenario.Response{Status: 502}, scenario.Error},
		{"RefreshGatewayTimeout", scenario.Refresh, scenario.Response{Status: 504}, scenario.Error},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc, st := journeyAt(tc.kind)
			if o := sc.Done(st, tc.resp); o.Verdict != tc.want {
				t.Fatalf("verdict %v, want %v", o.Verdict, tc.want)
			}
			if st, _ = sc.Next(); st.Kind != scenario.Login {
				t.Errorf("next step is %s, want a new login", st.Kind)
			}
		})
	}
}

func TestJourneyWaitsForIdleUserAndStops(t *testing.T) {
	sc, _ := scenario.New("churn", scenario.NewEndpoints("http://127.0.0.1"), []*scenario.User{scenario.NewUser("alice", "pw-alice-1")}, scenario.DefaultJourney("churn"), "")
	if _, err := sc.Next(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := sc.Next() // alice is busy: waits
		done <- err
	}()
	// Stop only once the step waits, which it counts before it blocks.
	err := poll.Until(context.Background(), 5*time.Second, time.Millisecond, func() error {
		if sc.Waits() != 1 {
			return errors.New("Next is not waiting")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Waits() = %d, want 1", sc.Waits())
	}
	// Counted before it blocks, the wait may not be under way yet.
	err = poll.Until(context.Background(), 5*time.Second, time.Millisecond, func() error {
		if got := sc.Waiting(); got != 1 {
			return fmt.Errorf("Waiting() = %d, want 1", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sc.Stop()
	if err := <-done; err != scenario.ErrStopped {
		t.Errorf("Next after Stop returned %v, want ErrStopped", err)
	}
	if got := sc.Waiting(); got != 0 {
		t.Errorf("Waiting() after Stop = %d, want 0", got)
	}
}

// TestJourneyStoppedHandsOutNothing: after Stop, Next refuses even when a
// user is idle, so that no request leaves once the sending is over.
func TestJourneyStoppedHandsOutNothing(t *testing.T) {
	sc, _ := scenario.New("churn", scenario.NewEndpoints("http://127.0.0.1"), []*scenario.User{scenario.NewUser("alice", "pw-alice-1")}, scenario.DefaultJourney("churn"), "")
	sc.Stop()
	if st, err := sc.Next(); err != scenario.ErrStopped {
		t.Errorf("Next after Stop with alice idle = %v, %v; want ErrStopped", st, err)
	}
}

func TestKindsOf(t *testing.T) {
	tests := []struct {
		name    string
		journey scenario.Journey
		want    []scenario.Kind
	}{
		{"read", scenario.Journey{}, []scenario.Kind{scenario.Profile}},
		{"login", scenario.Journey{}, []scenario.Kind{scenario.Login}},
		{"get", scenario.Journey{}, []scenario.Kind{scenario.Get}},
		{"churn", scenario.DefaultJourney("churn"), []scenario.Kind{scenario.Login, scenario.Profile, scenario.Logout}},
		{"mixed", scenario.DefaultJourney("mixed"), []scenario.Kind{scenario.Login, scenario.Profile, scenario.Sessions, scenario.Refresh, scenario.Logout}},
		{"mixed", scenario.Journey{Lists: 2}, []scenario.Kind{scenario.Login, scenario.Sessions, scenario.Logout}},
	}
	for _, tc := range tests {
		if got := scenario.KindsOf(tc.name, tc.journey); !slices.Equal(got, tc.want) {
			t.Errorf("KindsOf(%s, %+v) = %v, want %v", tc.name, tc.journey, got, tc.want)
		}
	}
}

// TestJourneyKeepsTokenAfterServiceUnavailable: the service's own 503 on a
// refresh changed nothing, so the next step carries the same token.
func TestJourneyKeepsTokenAfterServiceUnavailable(t *testing.T) {
	sc, st := journeyAt(scenario.Refresh)
	held := st.Target.Header.Get("X-Session-Id")
	if o := sc.Done(st, scenario.Response{Status: 503, Body: body(`{"error":"Session store unavailable"}`)}); o.Verdict != scenario.Error {
		t.Fatalf("verdict %v, want error", o.Verdict)
	}
	st, _ = sc.Next()
	if st.Kind == scenario.Login || st.Target.Header.Get("X-Session-Id") != held {
		t.Errorf("next step is %s with %q, want the plan to go on with %q", st.Kind, st.Target.Header.Get("X-Session-Id"), held)
	}
}

// journeyAt starts a one-user mixed journey (one read, one refresh),
// answers its login with tokenA and every later step with tokenB until the
// first step of kind, which it returns unanswered.
func journeyAt(kind scenario.Kind) (scenario.Scenario, *scenario.Step) {
	j := scenario.Journey{Reads: 1, Refreshes: 1}
	sc, _ := scenario.New("mixed", scenario.NewEndpoints("http://127.0.0.1"), []*scenario.User{scenario.NewUser("alice", "pw-alice-1")}, j, "")
	st, _ := sc.Next()
	sc.Done(st, answer(st, tokenA))
	for {
		st, _ = sc.Next()
		if st.Kind == kind {
			return sc, st
		}
		sc.Done(st, answer(st, tokenB))
	}
}
