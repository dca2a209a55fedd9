// Command loadtest loads the session API over HTTP only, as its users do,
// and checks every answer while it does.
//
// A scenario (-scenario) says what the users do: read their profile, log
// in, go through whole sessions (mixed, churn). Users are registered in an
// untimed set-up phase first. The load is an open model (-rate or -stages:
// arrivals on a schedule that does not wait for answers, so a slow target
// cannot slow the arrivals and hide its own latency) or a closed one
// (-workers: each worker sends its next request when the previous one is
// answered). Every answer is judged against the contract; a wrong answer
// (another user's profile, a live session refused) fails the run whatever
// the thresholds say. The report gives requests per second achieved and
// asked, latency percentiles per kind of request, status codes and the
// share each replica served, on the terminal and optionally as JSON and as
// an HTML page with plots.
//
// It sends traffic only to this machine's loopback unless -allow-remote
// says otherwise, and every run is bounded in time and requests.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"redis-session-app/loadtest/internal/report"
	"redis-session-app/loadtest/internal/scenario"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go onSignals(sigs, cancel, os.Exit, os.Stderr)
	err := run(ctx, os.Args, os.Stdout, os.Stderr)
	signal.Stop(sigs)
	cancel()
	var usage *usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.As(err, &usage):
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// onSignals cancels the run at the first signal, so that it stops sending
// and reports what it has, and ends the process at the second without
// waiting for the requests in flight (up to -timeout), with the shell's
// code for death by that signal (130 for SIGINT).
func onSignals(sigs <-chan os.Signal, cancel func(), exit func(int), stderr io.Writer) {
	<-sigs
	cancel()
	sig := <-sigs
	fmt.Fprintf(stderr, "loadtest: %s again: exiting at once, without a report\n", sig)
	code := 1
	if s, ok := sig.(syscall.Signal); ok {
		code = 128 + int(s)
	}
	exit(code)
}

// usageError is a flag that could not be accepted; main exits 2 for it.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// stepHeader carries a step's id from the targeter to the transport, which
// removes it before the request leaves, as it does vegeta's own headers.
const stepHeader = "Loadtest-Step"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if err != nil {
		return &usageError{err}
	}
	// A report path that cannot be written fails as a bad flag does,
	// before any load, not after the run it was to keep.
	for _, f := range []struct{ flag, path string }{{"-json", o.jsonPath}, {"-html", o.htmlPath}} {
		if err := checkWritable(f.path); err != nil {
			return &usageError{fmt.Errorf("%s: %w", f.flag, err)}
		}
	}
	transport := newTransport(o)
	defer transport.CloseIdleConnections()
	endpoints := scenario.NewEndpoints(o.target).WithUserAgent(o.userAgent)

	users, err := prepareUsers(ctx, o, transport, endpoints, stderr)
	if err != nil {
		return err
	}
	sc, err := scenario.New(o.scenario, endpoints, users, o.journey, o.getPath)
	if err != nil {
		return err
	}
	if o.startAfter > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(o.startAfter):
		}
	}
	return attack(ctx, o, transport, sc, len(users), stdout, stderr)
}

// setupDone starts the line that ends the set-up phase; a benchmark waits
// for it before it reads the target's counters.
const setupDone = "set-up done"

// prepareUsers makes the users of the run: read from -sessions-file, or
// registered (and for read, logged in) in the untimed set-up phase.
func prepareUsers(ctx context.Context, o options, transport http.RoundTripper, endpoints scenario.Endpoints, stderr io.Writer) ([]*scenario.User, error) {
	switch {
	case !scenario.NeedsUsers(o.scenario):
		fmt.Fprintf(stderr, "%s: the %s scenario has no users\n", setupDone, o.scenario)
		return nil, nil
	case o.sessionsFile != "":
		f, err := os.Open(o.sessionsFile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		users, err := scenario.ReadSessions(f)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", o.sessionsFile, err)
		}
		fmt.Fprintf(stderr, "%s: %d sessions read from %s\n", setupDone, len(users), o.sessionsFile)
		return users, nil
	}
	users := make([]*scenario.User, o.users)
	for i := range users {
		users[i] = scenario.NewUser(o.userPrefix+strconv.Itoa(i), "loadtest-password-"+strconv.Itoa(i))
	}
	login := scenario.NeedsLogin(o.scenario)
	what := "registering"
	if login {
		what = "registering and logging in"
	}
	fmt.Fprintf(stderr, "set-up (not timed): %s %s %s0..%d on %s\n", what, report.Counted(uint64(o.users), "user", "users"), o.userPrefix, o.users-1, o.target)
	setup := &scenario.Setup{
		// Each request is bounded by -timeout, as in the timed phase, and
		// the whole set-up by -setup-timeout (the Deadline).
		Client:    &http.Client{Transport: transport, Timeout: o.timeout, CheckRedirect: noRedirects},
		Endpoints: endpoints,
		Parallel:  o.setupParallel,
		Deadline:  time.Now().Add(o.setupTimeout),
		Log:       stderr,
	}
	sr, err := setup.Run(ctx, users, login)
	if err != nil {
		return nil, fmt.Errorf("set-up: %w", err)
	}
	existed := fmt.Sprintf("%d existed", sr.Existing)
	if !login && sr.Existing > 0 {
		existed += fmt.Sprintf(" (%d took the password: logged in and out)", sr.Checked)
	}
	fmt.Fprintf(stderr, "%s in %.1fs: %s registered, %s, %d logged in, %.0fs waiting on Retry-After\n",
		setupDone, sr.Took.Seconds(), report.Counted(uint64(sr.Registered), "user", "users"), existed, sr.LoggedIn, sr.Waited.Seconds())
	return users, nil
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// newTransport returns the HTTP transport of every request. Without
// -allow-remote its dialer refuses any address that is not loopback, so
// that a name resolving elsewhere cannot send the load off this machine.
func newTransport(o options) *http.Transport {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if !o.allowRemote {
		dialer.Control = func(network, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
				return fmt.Errorf("refusing to connect to %s: not a loopback address (see -allow-remote)", address)
			}
			return nil
		}
	}
	return &http.Transport{
		DialContext:         dialer.DialContext,
		MaxIdleConns:        o.connections,
		MaxIdleConnsPerHost: o.connections,
		// Shorter than nginx's keepalive_timeout, so the client closes an
		// idle connection before the server does.
		IdleConnTimeout:    30 * time.Second,
		DisableCompression: true,
	}
}

// steps remembers the step of every request in flight: the targeter gives
// each step an id, the transport ties the id to vegeta's sequence number
// (which every result carries, failed ones too) and the result's reader
// takes the step back by that number.
type steps struct {
	next    atomic.Uint64
	pending sync.Map // step id → *flight
	bySeq   sync.Map // vegeta sequence number → *flight
	// left counts the requests that left: bound to a sequence number by
	// the transport. A step still waiting for an idle user has not.
	// answered counts those whose answer (or failure) is in.
	left, answered atomic.Uint64
}

// inFlight counts the requests that left and are not answered yet. An
// answer is counted before its user is idle again and can send the next
// request, and left is read first: a request that leaves meanwhile may be
// missed, but none is counted twice.
func (s *steps) inFlight() int64 {
	left := s.left.Load()
	return max(0, int64(left)-int64(s.answered.Load()))
}

// flight is one request on its way: its step and when it really left.
type flight struct {
	step *scenario.Step
	// sent is when the transport got the request. vegeta stamps a result
	// before it asks the targeter for the step, and a journey's step may
	// wait there for an idle user: only this says when it left.
	sent time.Time
	// written counts the times the request was written out whole.
	written atomic.Int32

	// The answer's status (0: none) and what the scenario made of it, set
	// by the transport before vegeta hands over the result.
	status  int
	outcome scenario.Outcome
}

// resent tells whether the transport wrote the request more than once.
// Go's transport sends an idempotent request again, without a word, when
// a reused connection closed after it was written and before any answer
// came: the target dropped it, which the answer to the second one hides.
func (f *flight) resent() bool { return f.written.Load() > 1 }

func (s *steps) add(st *scenario.Step) string {
	id := strconv.FormatUint(s.next.Add(1), 10)
	s.pending.Store(id, &flight{step: st})
	return id
}

// bind ties the step of id to vegeta's sequence number seq, stamped as
// sent now, and returns its flight (nil when id is not a step's).
func (s *steps) bind(id, seq string) *flight {
	v, ok := s.pending.LoadAndDelete(id)
	n, err := strconv.ParseUint(seq, 10, 64)
	if !ok || err != nil {
		return nil
	}
	f := v.(*flight)
	f.sent = time.Now()
	s.bySeq.Store(n, f)
	s.left.Add(1)
	return f
}

func (s *steps) take(seq uint64) *flight {
	f, ok := s.bySeq.LoadAndDelete(seq)
	if !ok {
		return nil
	}
	return f.(*flight)
}

// maxBody is how much of an answer is read into memory and judged.
const maxBody = 64 << 10

// tagging is the transport of the timed phase: it ties each request to its
// step, strips the headers that are not the user's, and has the scenario
// judge the answer as soon as it is in.
//
// The judging is done in the worker that sent the request, before the
// worker asks for its next step: a journey's user is idle again by then.
// Judged later, by the goroutine that reads vegeta's results, the user
// was still busy when the worker, freed as soon as that goroutine took
// its result, asked for the next step; so with as many users as workers
// nearly every step waited for one.
type tagging struct {
	next    http.RoundTripper
	steps   *steps
	sc      scenario.Scenario
	timeout time.Duration // the client's
}

func (t *tagging) RoundTrip(req *http.Request) (*http.Response, error) {
	// The request was made by vegeta for this one call and is read by no
	// one else, so its headers may be trimmed in place.
	f := t.steps.bind(req.Header.Get(stepHeader), req.Header.Get("X-Vegeta-Seq"))
	req.Header.Del(stepHeader)
	req.Header.Del("X-Vegeta-Seq")
	req.Header.Del("X-Vegeta-Attack")
	if f != nil {
		trace := &httptrace.ClientTrace{WroteRequest: func(w httptrace.WroteRequestInfo) {
			// A write that failed reached no server; only whole ones
			// count.
			if w.Err == nil {
				f.written.Add(1)
			}
		}}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	}
	resp, err := t.next.RoundTrip(req)
	switch {
	case f == nil:
	case err != nil:
		t.judge(f, scenario.Response{Err: t.failure(req.Context(), err)})
	default:
		resp.Body = &answerBody{ReadCloser: resp.Body, t: t, f: f, ctx: req.Context(), status: resp.StatusCode}
	}
	return resp, err
}

// failure describes why a request got no whole answer. Go words the
// client's timeout after where it struck (dialling, awaiting the headers,
// reading the body) and how the request was cancelled: one cause, which
// is to be one row of the report.
func (t *tagging) failure(ctx context.Context, err error) string {
	// The client's timeout is the deadline of the request's context. The
	// client may cancel the request a moment before the context itself
	// ends, so the clock decides, not ctx.Err.
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return fmt.Sprintf("-timeout (%s) exceeded", t.timeout)
	}
	return err.Error()
}

// judge has the scenario judge the answer to f's request.
func (t *tagging) judge(f *flight, r scenario.Response) {
	t.steps.answered.Add(1)
	f.status = r.Status
	f.outcome = outcome(t.sc.Done(f.step, r), f)
}

// answerBody keeps the first maxBody bytes of an answer as vegeta reads
// it, and has it judged when vegeta closes it, which vegeta does before
// it hands over the result (and the worker takes its next step).
type answerBody struct {
	io.ReadCloser
	t      *tagging
	f      *flight
	ctx    context.Context // the request's
	status int
	body   []byte
	err    error // the first read error but the end
	closed bool
}

func (b *answerBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.body = append(b.body, p[:min(n, maxBody-len(b.body))]...)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

func (b *answerBody) Close() error {
	if !b.closed {
		b.closed = true
		r := scenario.Response{Status: b.status, Body: b.body}
		if b.err != nil {
			// Cut off: no whole answer, as vegeta counts it too.
			r = scenario.Response{Err: b.t.failure(b.ctx, b.err)}
		}
		b.t.judge(b.f, r)
	}
	return b.ReadCloser.Close()
}

// attack runs the timed phase of users users and reports.
func attack(ctx context.Context, o options, transport http.RoundTripper, sc scenario.Scenario, users int, stdout, stderr io.Writer) error {
	tracked := &steps{}
	client := &http.Client{
		Transport:     &tagging{next: transport, steps: tracked, sc: sc, timeout: o.timeout},
		Timeout:       o.timeout,
		CheckRedirect: noRedirects,
	}
	run := report.Run{Scenario: o.scenario, Target: o.target, Users: users}
	var pacer vegeta.Pacer
	if o.schedule != nil {
		pacer = *o.schedule
		run.Model, run.Schedule = "open", o.schedule.String()
		run.Expected, run.Rate = o.schedule.Expected, o.schedule.Rate
	} else {
		// A rate of 0 is vegeta's "as fast as the workers go".
		pacer = vegeta.ConstantPacer{}
		run.Model, run.Workers = "closed", o.workers
	}
	opts := []func(*vegeta.Attacker){vegeta.Client(client), vegeta.MaxBody(maxBody)}
	if o.schedule != nil {
		// Workers are started as arrivals need them, up to the bound on
		// requests in flight; reaching it shows as a shortfall.
		opts = append(opts, vegeta.Workers(uint64(min(64, o.maxInFlight))), vegeta.MaxWorkers(uint64(o.maxInFlight)))
	} else {
		opts = append(opts, vegeta.Workers(uint64(o.workers)), vegeta.MaxWorkers(uint64(o.workers)))
	}
	attacker := vegeta.NewAttacker(opts...)

	var sent atomic.Uint64
	targeter := func(t *vegeta.Target) error {
		if sent.Add(1) > o.maxRequests {
			return vegeta.ErrNoTargets
		}
		st, err := sc.Next()
		if err != nil {
			return err
		}
		*t = st.Target
		t.Header.Set(stepHeader, tracked.add(st))
		return nil
	}

	start := time.Now()
	coll := report.NewCollector(start)
	results := attacker.Attack(targeter, pacer, o.duration, o.scenario)
	stop := func() {
		attacker.Stop()
		sc.Stop()
	}
	// The sending ends with -duration whatever the target does. vegeta
	// looks at the clock only between ticks, and while every worker waits
	// on a stalled target it waits to hand out the next tick: the first
	// worker freed (at -timeout) would send one more request, which could
	// stall as long again. And a step waiting for an idle user gives up:
	// sent later, it would stretch the run and count as sent on time.
	endOfSending := time.AfterFunc(o.duration+endGrace, stop)
	defer endOfSending.Stop()
	var tick <-chan time.Time
	if o.progress > 0 {
		t := time.NewTicker(o.progress)
		defer t.Stop()
		tick = t.C
	}
	interrupted := ctx.Done()
	var interruptedAt time.Duration // 0: not interrupted
	var lastAnswer time.Duration    // from start
loop:
	for {
		select {
		case <-interrupted:
			// Stop once; the answers of requests in flight still arrive.
			fmt.Fprintln(stderr, "interrupted: waiting for the requests in flight, then reporting (interrupt again to exit at once)")
			// Once the sending is over (the schedule or -duration ran
			// out, or -max-requests), an interrupt only cuts the wait
			// for the last answers: the run is whole.
			if at := time.Since(start); at < o.duration && sent.Load() <= o.maxRequests {
				interruptedAt = at
			}
			stop()
			interrupted = nil
		case now := <-tick:
			p := coll.Progress(now)
			// Steps waiting for an idle user have not left and are
			// counted apart.
			p.InFlight = tracked.inFlight()
			p.WaitingForUser = sc.Waiting()
			fmt.Fprintln(stderr, p)
		case r, ok := <-results:
			if !ok {
				break loop
			}
			f := tracked.take(r.Seq)
			if f == nil {
				// The targeter ended the attack or the scenario
				// stopped: nothing was sent.
				continue
			}
			rec := report.Record{
				Kind:     f.step.Kind,
				At:       f.sent,
				Latency:  r.Latency,
				Status:   f.status,
				Outcome:  f.outcome,
				Instance: r.Headers.Get("X-Instance"),
			}
			if o.schedule != nil {
				// Sequence numbers follow the order of the schedule's
				// ticks: request Seq is its arrival Seq+1.
				if due, ok := o.schedule.Due(r.Seq + 1); ok {
					rec.Latency, rec.SendDelay = fromDue(r, start.Add(due), f.sent)
				}
			}
			coll.Add(rec)
			lastAnswer = max(lastAnswer, r.Timestamp.Add(r.Latency).Sub(start))
		}
	}
	stop()

	closedLastAnswer := lastAnswer
	if o.schedule != nil {
		closedLastAnswer = 0
	}
	window := sendWindow(o.duration, interruptedAt, sent.Load() > o.maxRequests, closedLastAnswer)
	sum := coll.Summarize(run, window, sc.Waits())
	sum.Interrupted = interruptedAt > 0
	passed := o.limits.Check(sum)
	if err := sum.WriteText(stdout); err != nil {
		return err
	}
	for _, warn := range sum.Warnings() {
		fmt.Fprintln(stderr, warn)
	}
	return errors.Join(writeReports(sum, o.jsonPath, o.htmlPath), verdict(sum, passed, interruptedAt, o.duration))
}

// verdict is the run's error: nil when it passed, else what failed it.
func verdict(sum *report.Summary, passed bool, interruptedAt, planned time.Duration) error {
	if passed {
		return nil
	}
	if interruptedAt > 0 {
		// A partial run passes nothing, whatever its figures say; the
		// report's run check says so, and the message leads with it.
		msg := fmt.Sprintf("interrupted after %.1fs of %s: the report covers only the part that ran", interruptedAt.Seconds(), planned)
		if others := sum.Breaches(report.RunCheck); len(others) > 0 {
			msg += "; thresholds breached: " + strings.Join(others, "; ")
		}
		return errors.New(msg)
	}
	return errors.New("thresholds breached: " + strings.Join(sum.Breaches(), "; "))
}

// sendWindow is how long the sending phase ran, which rates are over: the
// planned duration (the schedule's, or -duration in the closed model),
// until the interrupt if there was one during it, or, when -max-requests
// ended it, until closedLastAnswer. That is the last answer in the closed
// model, whose workers each send only once their last request is
// answered, so that its last batch of requests took a whole latency too;
// and 0 in the open model, which the report takes as the last send.
func sendWindow(planned, interruptedAt time.Duration, requestsRanOut bool, closedLastAnswer time.Duration) time.Duration {
	switch {
	case requestsRanOut:
		return closedLastAnswer
	case interruptedAt > 0:
		return min(interruptedAt, planned)
	}
	return planned
}

// outcome is the verdict on a request: the scenario's on its answer, but a
// right answer to a request that was resent is an error, since the target
// closed a connection without answering it first.
func outcome(o scenario.Outcome, f *flight) scenario.Outcome {
	if o.Verdict == scenario.OK && f.resent() {
		return scenario.Outcome{Verdict: scenario.Error, Detail: "connection closed without an answer (the client resent the request)"}
	}
	return o
}

// endGrace is how long after -duration the sending is stopped: an arrival
// due at the schedule's very end leaves a moment after it, and one that
// leaves within this bound is not late by the report's measure.
const endGrace = report.LateBound

// fromDue returns an open-model request's latency and how late it left.
// vegeta stamps a request when a worker picks it up, which is late when
// every worker is busy (-max-in-flight) or the generator is short of CPU;
// measuring from then would leave the wait out of the latency, the
// coordinated omission the open model is there to avoid. So the latency
// counts from when the schedule made the request due. It left at sent,
// which is later than vegeta's stamp when the step waited for an idle
// user.
func fromDue(r *vegeta.Result, due, sent time.Time) (latency, late time.Duration) {
	late = max(0, sent.Sub(due))
	if r.Timestamp.Before(due) {
		// Picked up on time, to the precision of the pacer's sleep.
		return r.Latency, late
	}
	return r.Timestamp.Add(r.Latency).Sub(due), late
}

// writeReports writes the -json and -html files that were asked for. One
// that cannot be written does not keep the other from being written.
func writeReports(sum *report.Summary, jsonPath, htmlPath string) error {
	return errors.Join(writeFile(jsonPath, sum.WriteJSON), writeFile(htmlPath, sum.WriteHTML))
}

// checkWritable tells whether a file can be written at path (when one is
// given), leaving behind no file that was not there and changing none that
// was.
func checkWritable(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err == nil {
		f.Close()
		return os.Remove(path)
	}
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	if f, err = os.OpenFile(path, os.O_WRONLY, 0); err != nil {
		return err
	}
	return f.Close()
}

// writeFile writes one report file when a path was given. The report is
// rendered first, so that one that cannot be leaves no empty file behind.
func writeFile(path string, write func(io.Writer) error) error {
	if path == "" {
		return nil
	}
	var b bytes.Buffer
	if err := write(&b); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
