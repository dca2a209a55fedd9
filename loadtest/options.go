package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"redis-session-app/loadtest/internal/pace"
	"redis-session-app/loadtest/internal/report"
	"redis-session-app/loadtest/internal/scenario"
)

// Upper bounds that keep every run finite whatever the flags say.
const (
	maxDuration = 10 * time.Minute
	// maxSetupTimeout bounds the set-up, which waits out every 429's
	// Retry-After: a target that keeps answering 429 would hold it for as
	// long as -setup-timeout allows. An hour, six times the longest timed
	// phase, is ample once the target's login limits are raised for the
	// test, as the README says to.
	maxSetupTimeout = time.Hour
	maxRequests     = 10_000_000
	maxUsers        = 100_000
	// minProgress bounds how often a progress line is written: at 1ns (or
	// 1us, a typo for 1s) the lines would take a core from the generator.
	minProgress = 100 * time.Millisecond
)

type options struct {
	target      string
	allowRemote bool
	scenario    string
	users       int
	userPrefix  string
	journey     scenario.Journey
	// sessionsFile names users with sessions for "read", instead of set-up.
	sessionsFile string
	// getPath is the path of the "get" scenario.
	getPath   string
	userAgent string
	// startAfter is a pause between set-up and the timed phase, in which
	// a benchmark can read the target's counters.
	startAfter time.Duration

	// Open model: schedule is set. Closed model: workers is.
	schedule    *pace.Schedule
	workers     int
	maxInFlight int
	duration    time.Duration
	maxRequests uint64
	timeout     time.Duration
	connections int

	setupParallel int
	setupTimeout  time.Duration

	limits   report.Limits
	jsonPath string
	htmlPath string
	progress time.Duration
}

// unsetInt is an int flag whose default depends on other flags, as its
// usage says: its String of the zero value is empty, so that -h prints
// the usage's default alone and not "(default 0)" beside it.
type unsetInt int

func (v *unsetInt) String() string {
	if v == nil || *v == 0 {
		return ""
	}
	return strconv.Itoa(int(*v))
}

func (v *unsetInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("not a whole number")
	}
	*v = unsetInt(n)
	return nil
}

// p99Flag collects repeated -max-p99 KIND=DURATION values.
type p99Flag []string

func (f *p99Flag) String() string     { return strings.Join(*f, ",") }
func (f *p99Flag) Set(s string) error { *f = append(*f, s); return nil }

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var (
		o                  options
		rate, stages       string
		reads, lists, refs unsetInt
		p99s               p99Flag
	)
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s [flags]\n\nLoads the session API as users do and checks every answer.\n\n", args[0])
		fs.PrintDefaults()
	}
	fs.StringVar(&o.target, "target", "http://127.0.0.1:8080", "base URL of the API (nginx or one replica); loopback unless -allow-remote")
	fs.BoolVar(&o.allowRemote, "allow-remote", false, "allow a -target that is not on this machine's loopback: sends the load to another host; use it only against a deployment you run")
	fs.StringVar(&o.scenario, "scenario", "read", "what the users do: "+strings.Join(scenario.Names, ", "))
	fs.IntVar(&o.users, "users", 50, "users to register (and for read, log in) before the clock starts")
	fs.StringVar(&o.userPrefix, "user-prefix", "", `usernames are PREFIX0, PREFIX1, ... (default "loadtest-SCENARIO-"); existing accounts are reused`)
	fs.StringVar(&o.sessionsFile, "sessions-file", "", `read: take users and their sessions from this file ("USERNAME TOKEN" lines) instead of registering and logging in`)
	fs.StringVar(&o.getPath, "path", "/healthz", "get: the path to GET (wants 200)")
	fs.StringVar(&o.userAgent, "user-agent", scenario.BrowserUserAgent, "User-Agent of every request; sessions keep their login's, so its length matters to Redis memory")
	fs.DurationVar(&o.startAfter, "start-after", 0, `pause this long between set-up and the timed phase (after printing "set-up done")`)
	fs.Var(&reads, "reads", "mixed and churn: `n` profile reads per session (default 8 for mixed, 3 for churn)")
	fs.Var(&lists, "lists", "mixed and churn: `n` session lists per session (default 1 for mixed, 0 for churn)")
	fs.Var(&refs, "refreshes", "mixed and churn: `n` token refreshes per session (default 1 for mixed, 0 for churn)")
	fs.StringVar(&rate, "rate", "", "open model: arrivals per second (e.g. 5000 or 5000/s), sent whether or not earlier requests were answered")
	fs.StringVar(&stages, "stages", "", "open model with a ramp: DURATION@RATE,... each moving the rate linearly from the previous stage's (e.g. 10s@1000,30s@5000,10s@0)")
	fs.IntVar(&o.workers, "workers", 32, "closed model (without -rate or -stages): users that each send their next request when the previous one is answered")
	fs.IntVar(&o.maxInFlight, "max-in-flight", 10000, "open model: most requests in flight at once")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to send (at most 10m; -stages sets its own)")
	fs.Uint64Var(&o.maxRequests, "max-requests", 1_000_000, "send at most this many requests")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-request timeout, in the set-up too")
	fs.IntVar(&o.connections, "connections", 10000, "idle keep-alive connections kept to the target")
	fs.IntVar(&o.setupParallel, "setup-parallel", 4, "registrations and logins in flight at once during set-up")
	fs.DurationVar(&o.setupTimeout, "setup-timeout", 10*time.Minute, "give up on set-up (which waits out 429s) after this long (at most 1h)")
	fs.Float64Var(&o.limits.MaxErrorRate, "max-error-rate", 0.001, "fail when more than this share of requests fail (wrong answers always fail)")
	fs.Var(&p99s, "max-p99", "fail when the p99 of a kind of request exceeds a duration: KIND=DURATION, e.g. profile=5ms (repeatable, once per kind; KIND all is every request)")
	fs.Float64Var(&o.limits.MinRate, "min-rate", 0, "fail when fewer requests per second than this were achieved")
	fs.BoolVar(&o.limits.Strict, "strict", false, "fail an open-model run that achieved less than 95% of the asked rate")
	fs.StringVar(&o.jsonPath, "json", "", "also write the report as JSON to this file")
	fs.StringVar(&o.htmlPath, "html", "", "also write the report as one self-contained HTML page with plots to this file")
	fs.DurationVar(&o.progress, "progress", 5*time.Second, "print a progress line on stderr this often (0: never; else at least 100ms)")
	if err := fs.Parse(args[1:]); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	if !slices.Contains(scenario.Names, o.scenario) {
		return o, fmt.Errorf("-scenario %q: want one of %s", o.scenario, strings.Join(scenario.Names, ", "))
	}
	if o.sessionsFile != "" && o.scenario != "read" {
		return o, errors.New("-sessions-file is for -scenario read")
	}
	if o.sessionsFile != "" && set["users"] {
		return o, errors.New("-sessions-file names the users; drop -users")
	}
	if !strings.HasPrefix(o.getPath, "/") {
		return o, errors.New("-path must start with /")
	}
	// Go's client refuses CR, LF and most other control characters in a
	// header only as it sends it: every request would fail as unanswered.
	// A tab, which HTTP allows, goes too: no browser's User-Agent has one.
	if i := strings.IndexFunc(o.userAgent, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(o.userAgent[i:])
		return o, fmt.Errorf("-user-agent has a control character (%q at byte %d): want printable text", r, i)
	}
	if o.startAfter < 0 || o.startAfter > time.Minute {
		return o, errors.New("-start-after must be in [0, 1m]")
	}
	if o.userPrefix == "" {
		o.userPrefix = "loadtest-" + o.scenario + "-"
	}
	o.journey = scenario.DefaultJourney(o.scenario)
	for _, f := range []struct {
		name string
		v    int
		dst  *int
	}{{"reads", int(reads), &o.journey.Reads}, {"lists", int(lists), &o.journey.Lists}, {"refreshes", int(refs), &o.journey.Refreshes}} {
		if set[f.name] && (f.v < 0 || f.v > 1000) {
			return o, fmt.Errorf("-%s must be in [0, 1000]", f.name)
		}
		if set[f.name] && !scenario.HasJourneys(o.scenario) {
			// Accepted, it would be ignored without a word.
			return o, fmt.Errorf("-%s is for -scenario mixed and churn, not %s", f.name, o.scenario)
		}
		if set[f.name] {
			*f.dst = f.v
		}
	}

	switch {
	case rate != "" && stages != "":
		return o, errors.New("-rate and -stages both set: -stages is a rate that changes, use one")
	case stages != "" && set["duration"]:
		return o, errors.New("-stages sets the duration itself; drop -duration")
	case (rate != "" || stages != "") && set["workers"]:
		return o, errors.New("-workers is the closed model, -rate and -stages the open one: use one")
	}
	if rate == "" && stages == "" {
		// Accepted, they would be ignored without a word: the closed
		// model asks no rate to fall short of, and its requests in
		// flight are its workers.
		for _, f := range []struct{ name, why string }{
			{"strict", "fails a run that fell short of the asked rate, and the closed model (-workers) asks none"},
			{"max-in-flight", "bounds the requests in flight of the open model; in the closed model (-workers) they are the workers"},
		} {
			if set[f.name] {
				return o, fmt.Errorf("-%s is for the open model (-rate or -stages): it %s", f.name, f.why)
			}
		}
	}
	if o.duration <= 0 || o.duration > maxDuration {
		return o, fmt.Errorf("-duration must be in (0, %s]", maxDuration)
	}
	switch {
	case stages != "":
		s, err := pace.Parse(stages)
		if err != nil {
			return o, fmt.Errorf("-stages: %w", err)
		}
		if s.Duration() > maxDuration {
			return o, fmt.Errorf("-stages last %s, more than %s", s.Duration(), maxDuration)
		}
		o.schedule, o.duration = &s, s.Duration()
	case rate != "":
		r, err := pace.ParseRate(rate)
		if err != nil || r <= 0 {
			return o, fmt.Errorf("-rate %q: want a positive number of requests per second, at most %d", rate, pace.MaxRate)
		}
		s := pace.Constant(r, o.duration)
		o.schedule = &s
	}
	// Arrivals are whole: a schedule that makes less than one makes none,
	// and the run would fail for want of requests after the set-up.
	if o.schedule != nil && math.Floor(o.schedule.Expected(o.duration)+1e-9) < 1 {
		return o, fmt.Errorf("the schedule %s makes no request", o.schedule)
	}

	switch {
	case o.maxRequests == 0 || o.maxRequests > maxRequests:
		return o, fmt.Errorf("-max-requests must be in [1, %d]", maxRequests)
	case o.users < 1 || o.users > maxUsers:
		return o, fmt.Errorf("-users must be in [1, %d]", maxUsers)
	case o.workers < 1 || o.workers > 10000:
		return o, errors.New("-workers must be in [1, 10000]")
	case o.maxInFlight < 1 || o.maxInFlight > 100000:
		return o, errors.New("-max-in-flight must be in [1, 100000]")
	case o.timeout <= 0 || o.timeout > time.Minute:
		return o, errors.New("-timeout must be in (0, 1m]")
	case o.connections < 1:
		return o, errors.New("-connections must be positive")
	case o.setupParallel < 1 || o.setupParallel > 64:
		return o, errors.New("-setup-parallel must be in [1, 64]")
	case o.setupTimeout <= 0 || o.setupTimeout > maxSetupTimeout:
		return o, fmt.Errorf("-setup-timeout must be in (0, %s]", maxSetupTimeout)
	case !(o.limits.MaxErrorRate >= 0 && o.limits.MaxErrorRate <= 1): // NaN too
		return o, errors.New("-max-error-rate must be in [0, 1]")
	case !(o.limits.MinRate >= 0 && o.limits.MinRate <= pace.MaxRate):
		return o, fmt.Errorf("-min-rate must be in [0, %d]", pace.MaxRate)
	case o.progress != 0 && o.progress < minProgress:
		return o, fmt.Errorf("-progress must be 0 (no progress lines) or at least %s", minProgress)
	}

	// One file for both reports would keep only the HTML, written last.
	if o.jsonPath != "" && o.htmlPath != "" && sameFile(o.jsonPath, o.htmlPath) {
		return o, fmt.Errorf("-json and -html both name %s: give each report a file of its own", o.jsonPath)
	}

	kinds := scenario.KindsOf(o.scenario, o.journey)
	for _, v := range p99s {
		k, d, err := report.ParseP99(v, kinds)
		if err != nil {
			return o, err
		}
		if o.limits.MaxP99 == nil {
			o.limits.MaxP99 = map[scenario.Kind]time.Duration{}
		}
		// Kept, the last would silently drop a stricter one before it.
		if prev, dup := o.limits.MaxP99[k]; dup {
			return o, fmt.Errorf("-max-p99 %q: a limit for %s was already given (%s); give each kind one", v, k, prev)
		}
		o.limits.MaxP99[k] = d
	}

	base, err := checkTarget(o.target, o.allowRemote, hostsFile("/etc/hosts"))
	if err != nil {
		return o, err
	}
	o.target = base
	return o, nil
}

// absPath is path made absolute and clean, so that two spellings of one
// file compare equal; only clean when the working directory is unknown.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return filepath.Clean(path)
}

// sameFile tells whether writing a and b would write one file: the same
// path spelt two ways, two links (hard or symbolic) to one existing file,
// or paths that reach one name that does not exist yet through symbolic
// links (a dangling link, a linked directory).
func sameFile(a, b string) bool {
	if absPath(a) == absPath(b) {
		return true
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(fa, fb)
	}
	return resolvedPath(a) == resolvedPath(b)
}

// resolvedPath is the path that a write to path creates or changes, with
// every symbolic link on the way followed: those of its directory and, when
// path itself is a link to a file not there yet, those it points through.
// What cannot be resolved is left as it is.
func resolvedPath(path string) string {
	p := absPath(path)
	// A bound, as the kernel has one, against links that loop.
	for range 40 {
		dir, base := filepath.Split(p)
		if d, err := filepath.EvalSymlinks(dir); err == nil {
			dir = d
		}
		p = filepath.Join(dir, base)
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return p
		}
		target, err := os.Readlink(p)
		if err != nil {
			return p
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(dir, target)
		}
		p = filepath.Clean(target)
	}
	return p
}

// checkTarget checks that target is an http(s) URL without query or
// fragment and, unless remote is allowed, that it names this machine's
// loopback (see loopbackHost, which looks a name up with lookup); it
// returns the base URL without a trailing slash. The dialer checks again
// what the name resolves to.
func checkTarget(target string, allowRemote bool, lookup lookupIPs) (string, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("-target %q is not an http or https URL", target)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("-target %q: want a base URL without query, fragment or credentials", target)
	}
	// url.Parse checks only that a port is digits; a dial would refuse
	// the rest, after the run began.
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("-target %q: port %s is not in [1, 65535]", target, p)
		}
	}
	host := u.Hostname()
	if ip := shortIPv4(host); ip != nil {
		// Go's dialer does not read 127.1, with -allow-remote or not.
		host = ip.String()
	}
	if !allowRemote {
		var ok bool
		if host, ok = loopbackHost(host, lookup); !ok {
			return "", fmt.Errorf("-target %q is neither a loopback address nor a name that /etc/hosts gives loopback addresses only (without -allow-remote no name is looked up in DNS); to load another host you run, add -allow-remote", target)
		}
	}
	if host != u.Hostname() {
		u.Host = net.JoinHostPort(host, u.Port())
		if u.Port() == "" {
			u.Host = host
		}
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// lookupIPs resolves a host name to its addresses.
type lookupIPs func(host string) ([]net.IP, error)

// hostsFile looks a name up in the hosts file at path, and nowhere else:
// without -allow-remote a -target is not looked up in DNS, which would
// send a query off this machine. Names match regardless of case and of a
// trailing dot; an address with a zone (fe80::1%lo) is left out.
func hostsFile(path string) lookupIPs {
	return func(host string) ([]net.IP, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		var addrs []net.IP
		for line := range strings.SplitSeq(string(b), "\n") {
			line, _, _ = strings.Cut(line, "#")
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			ip := net.ParseIP(f[0])
			if ip != nil && slices.ContainsFunc(f[1:], func(name string) bool { return strings.EqualFold(strings.TrimSuffix(name, "."), host) }) {
				addrs = append(addrs, ip)
			}
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("%s is not in %s", host, path)
		}
		return addrs, nil
	}
}

// loopbackHost tells whether host names only this machine's loopback: a
// loopback address, or a name that resolves to loopback addresses only
// (localhost, or another that lookup, /etc/hosts, gives). It returns the host as the
// dialer is to reach it: a name in lower case without the trailing dot
// of an absolute one (Go's resolver would ask DNS for "localhost."), and
// a short IPv4 form such as 127.1, which Go's resolver does not read, as
// its dotted quad. The dialer checks every address again as it connects.
func loopbackHost(host string, lookup lookupIPs) (string, bool) {
	if ip := net.ParseIP(host); ip != nil {
		return host, ip.IsLoopback()
	}
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if ip := shortIPv4(name); ip != nil {
		return ip.String(), ip.IsLoopback()
	}
	if name == "" || strings.HasSuffix(name, ".") {
		return host, false
	}
	addrs, err := lookup(name)
	if err != nil || len(addrs) == 0 || slices.ContainsFunc(addrs, func(ip net.IP) bool { return !ip.IsLoopback() }) {
		return host, false
	}
	return name, true
}

// shortIPv4 reads the shorthand IPv4 forms of inet_aton in decimal, a.b
// and a.b.c (127.1 is 127.0.0.1), whose last part fills the remaining
// bytes; nil when s is not one. Hexadecimal and octal parts are not read,
// so such a -target is refused.
func shortIPv4(s string) net.IP {
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return nil
	}
	ip := make(net.IP, 0, net.IPv4len)
	for i, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" || (len(p) > 1 && p[0] == '0') {
			return nil
		}
		last := i == len(parts)-1
		bytes := 1
		if last {
			bytes = net.IPv4len - len(parts) + 1
		}
		n, err := strconv.ParseUint(p, 10, 8*bytes)
		if err != nil {
			return nil
		}
		for b := bytes - 1; b >= 0; b-- {
			ip = append(ip, byte(n>>(8*b)))
		}
	}
	return ip.To16()
}
