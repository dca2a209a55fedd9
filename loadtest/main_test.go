package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func TestCheckTarget(t *testing.T) {
	tests := []struct {
		target      string
		allowRemote bool
		want        string // "" means refused
	}{
		{"http://127.0.0.1:8080", false, "http://127.0.0.1:8080"},
		{"http://127.0.0.1:8080/", false, "http://127.0.0.1:8080"},
		{"http://localhost:3000", false, "http://localhost:3000"},
		{"http://127.3.4.5", false, "http://127.3.4.5"},
		{"http://[::1]:8080/", false, "http://[::1]:8080"},
		{"https://127.0.0.1/api/", false, "https://127.0.0.1/api"},
		{"http://10.0.0.1:8080", false, ""},
		{"http://172.17.0.1:8080", false, ""},
		{"http://example.com", false, ""},
		{"http://example.com/", true, "http://example.com"},
		{"127.0.0.1:8080", false, ""},
		{"ftp://127.0.0.1", false, ""},
		{"http://127.0.0.1/?a=b", false, ""},
		{"http://user:pw@127.0.0.1/", false, ""},
		{"", false, ""},
		{"http://127.0.0.1:65535", false, "http://127.0.0.1:65535"},
		{"http://127.0.0.1:", false, "http://127.0.0.1:"},
		{"http://127.0.0.1:99999", false, ""},
		{"http://127.0.0.1:65536", false, ""},
		{"http://127.0.0.1:0", false, ""},
		{"http://[::1]:123456/", false, ""},
		{"http://localhost:99999999999999999999", false, ""},
		{"http://example.com:99999", true, ""},
		// Host names are case-insensitive and may be absolute; the name
		// the dialer gets is the one the resolver reads from /etc/hosts.
		{"http://LOCALHOST:3000", false, "http://localhost:3000"},
		{"http://localhost.:3000/", false, "http://localhost:3000"},
		{"http://LocalHost.", false, "http://localhost"},
		{"http://localhost..", false, ""},
		// inet_aton's short forms, which Go's resolver does not read.
		{"http://127.1:8080", false, "http://127.0.0.1:8080"},
		{"http://127.1:8080", true, "http://127.0.0.1:8080"},
		{"http://10.1:8080", true, "http://10.0.0.1:8080"},
		// A zone the dialer's check cannot read: refused here too.
		{"http://[::1%25lo]:8080", false, ""},
		{"http://127.0.1", false, "http://127.0.0.1"},
		{"http://127.65535", false, "http://127.0.255.255"},
		{"http://127.16777216", false, ""},
		{"http://10.1", false, ""},
		{"http://0177.1", false, ""},
		{"http://0x7f.1", false, ""},
		// A name resolving to loopback addresses only, from /etc/hosts.
		{"http://vm:8080", false, "http://vm:8080"},
		{"http://both-loopback:8080", false, "http://both-loopback:8080"},
		{"http://mixed:8080", false, ""},
		{"http://remote:8080", false, ""},
		{"http://unresolved:8080", false, ""},
	}
	// A hosts file of its own: names are looked up there only, never in
	// DNS.
	hosts := filepath.Join(t.TempDir(), "hosts")
	err := os.WriteFile(hosts, []byte(`# comment
127.0.0.1	localhost vm  # trailing comment
::1	localhost both-loopback
127.0.1.1 Both-Loopback.
127.0.0.1 mixed
192.0.2.1 mixed remote
fe80::1%lo zoned
192.0.2.2 example.com
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	lookup := hostsFile(hosts)
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			got, err := checkTarget(tc.target, tc.allowRemote, lookup)
			if tc.want == "" {
				if err == nil {
					t.Errorf("checkTarget(%q) = %q, want an error", tc.target, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("checkTarget(%q) = %q, %v, want %q", tc.target, got, err, tc.want)
			}
		})
	}
}

func TestParseOptions(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		errPart string // "" means accepted
		check   func(t *testing.T, o options)
	}{
		{"Defaults", nil, "", func(t *testing.T, o options) {
			if o.schedule != nil || o.workers != 32 || o.scenario != "read" || o.userPrefix != "loadtest-read-" {
				t.Errorf("got schedule %v, workers %d, scenario %q, prefix %q; want closed model, 32 workers, read", o.schedule, o.workers, o.scenario, o.userPrefix)
			}
		}},
		{"RateIsOpenModel", []string{"-rate", "5000/s", "-duration", "3s"}, "", func(t *testing.T, o options) {
			if o.schedule == nil || o.schedule.Expected(3*time.Second) != 15000 {
				t.Errorf("got schedule %v, want 5000/s for 3s", o.schedule)
			}
		}},
		{"StagesSetDuration", []string{"-stages", "10s@1000,30s@5000,10s@0"}, "", func(t *testing.T, o options) {
			if o.duration != 50*time.Second {
				t.Errorf("got duration %s, want 50s", o.duration)
			}
		}},
		{"ChurnJourney", []string{"-scenario", "churn", "-reads", "5"}, "", func(t *testing.T, o options) {
			if o.journey.Reads != 5 || o.journey.Lists != 0 || o.journey.Refreshes != 0 {
				t.Errorf("got journey %+v, want 5 reads only", o.journey)
			}
		}},
		{"MaxP99", []string{"-scenario", "mixed", "-max-p99", "profile=5ms", "-max-p99", "all=20ms"}, "", func(t *testing.T, o options) {
			if o.limits.MaxP99["profile"] != 5*time.Millisecond || o.limits.MaxP99["all"] != 20*time.Millisecond {
				t.Errorf("got %v, want profile 5ms and all 20ms", o.limits.MaxP99)
			}
		}},
		{"ErrP99KindNotSent", []string{"-max-p99", "login=5ms"}, "sends no", nil},
		{"ErrP99KindTwice", []string{"-max-p99", "get=1ms", "-scenario", "get", "-max-p99", "get=1h"}, "a limit for get was already given (1ms)", nil},
		{"ErrP99AllTwice", []string{"-max-p99", "all=1ms", "-max-p99", "all=1ms"}, "a limit for all was already given", nil},
		{"ErrReadsWithRead", []string{"-scenario", "read", "-reads", "3"}, "-reads is for -scenario mixed and churn", nil},
		{"ErrListsWithLogin", []string{"-scenario", "login", "-lists", "1"}, "-lists is for", nil},
		{"ErrRefreshesWithGet", []string{"-scenario", "get", "-refreshes", "0"}, "-refreshes is for", nil},
		{"ErrStagesAllAtZero", []string{"-stages", "1s@0"}, "makes no request", nil},
		{"ErrStagesAllAtZeroMany", []string{"-stages", "0s@0,2s@0"}, "makes no request", nil},
		{"ErrRateMakesNoRequestInTheDuration", []string{"-rate", "0.5", "-duration", "1s"}, "makes no request", nil},
		{"LowRateLongEnough", []string{"-rate", "0.5", "-duration", "2s"}, "", func(t *testing.T, o options) {
			if o.schedule == nil || o.schedule.Expected(o.duration) != 1 {
				t.Errorf("got schedule %v, want one request in 2s", o.schedule)
			}
		}},
		{"RampToZeroMakesRequests", []string{"-stages", "1s@4,1s@0"}, "", func(t *testing.T, o options) {
			if o.schedule == nil || o.schedule.Expected(o.duration) != 4 {
				t.Errorf("got schedule %v, want 4 requests", o.schedule)
			}
		}},
		{"ErrRateAndWorkers", []string{"-rate", "100", "-workers", "2"}, "use one", nil},
		{"ErrStrictInTheClosedModel", []string{"-strict"}, "-strict is for the open model", nil},
		{"ErrStrictWithWorkers", []string{"-workers", "4", "-strict=false"}, "-strict is for the open model", nil},
		{"ErrMaxInFlightInTheClosedModel", []string{"-max-in-flight", "5"}, "-max-in-flight is for the open model", nil},
		{"ErrMaxInFlightWithWorkers", []string{"-workers", "4", "-max-in-flight", "5"}, "-max-in-flight is for the open model", nil},
		{"StrictAndMaxInFlightWithRate", []string{"-rate", "100", "-strict", "-max-in-flight", "5"}, "", func(t *testing.T, o options) {
			if !o.limits.Strict || o.maxInFlight != 5 {
				t.Errorf("got -strict %v, -max-in-flight %d; want true, 5", o.limits.Strict, o.maxInFlight)
			}
		}},
		{"StrictWithStages", []string{"-stages", "1s@5", "-strict"}, "", func(t *testing.T, o options) {
			if !o.limits.Strict {
				t.Error("got -strict false with -stages, want true")
			}
		}},
		{"ErrRateAndStages", []string{"-rate", "100", "-stages", "1s@5"}, "use one", nil},
		{"ErrStagesAndDuration", []string{"-stages", "1s@5", "-duration", "3s"}, "drop -duration", nil},
		{"ErrZeroRate", []string{"-rate", "0"}, "positive", nil},
		{"ErrRateTooHigh", []string{"-rate", "1e308"}, "at most 1000000", nil},
		{"ErrStageRateTooHigh", []string{"-stages", "1s@1e308,1s@1.7e308"}, "[0, 1000000]", nil},
		{"ErrMinRateNaN", []string{"-min-rate", "NaN"}, "-min-rate", nil},
		{"ErrMaxErrorRateNaN", []string{"-max-error-rate", "NaN"}, "-max-error-rate", nil},
		{"ErrDurationTooLong", []string{"-duration", "1h"}, "-duration", nil},
		{"ErrSetupTimeoutZero", []string{"-setup-timeout", "0s"}, "-setup-timeout must be in (0, 1h0m0s]", nil},
		{"ErrSetupTimeoutTooLong", []string{"-setup-timeout", "1h1s"}, "-setup-timeout must be in (0, 1h0m0s]", nil},
		{"ErrSetupTimeoutForever", []string{"-setup-timeout", "2562047h"}, "-setup-timeout must be in (0, 1h0m0s]", nil},
		{"SetupTimeoutAtTheBound", []string{"-setup-timeout", "1h"}, "", func(t *testing.T, o options) {
			if o.setupTimeout != time.Hour {
				t.Errorf("got -setup-timeout %s, want 1h", o.setupTimeout)
			}
		}},
		{"ErrStagesTooLong", []string{"-stages", "11m@5"}, "more than", nil},
		{"ErrZeroRequests", []string{"-max-requests", "0"}, "-max-requests", nil},
		{"ErrTooManyUsers", []string{"-users", "1000000"}, "-users", nil},
		{"ErrUnknownScenario", []string{"-scenario", "browse"}, "want one of", nil},
		{"ErrRemoteTarget", []string{"-target", "http://192.168.1.1"}, "-allow-remote", nil},
		{"ErrUsersWithSessionsFile", []string{"-sessions-file", "s.txt", "-users", "3"}, "drop -users", nil},
		{"ErrExtraArgument", []string{"extra"}, "unexpected", nil},
		{"ErrTargetPortOutOfRange", []string{"-target", "http://127.0.0.1:99999"}, "not in [1, 65535]", nil},
		{"ErrUserAgentCRLF", []string{"-user-agent", "a\r\nX-Evil: 1"}, `control character ('\r' at byte 1)`, nil},
		{"ErrUserAgentNUL", []string{"-user-agent", "a\x00b"}, "control character", nil},
		{"ErrUserAgentTab", []string{"-user-agent", "a\tb"}, "control character", nil},
		{"ErrUserAgentDEL", []string{"-user-agent", "a\x7fb"}, "control character", nil},
		{"UserAgentNotASCII", []string{"-user-agent", "navigateur/1.0 (Français)"}, "", func(t *testing.T, o options) {
			if o.userAgent != "navigateur/1.0 (Français)" {
				t.Errorf("got -user-agent %q", o.userAgent)
			}
		}},
		{"ErrProgressTooOften", []string{"-progress", "1ns"}, "-progress must be 0", nil},
		{"ErrProgressJustUnderTheFloor", []string{"-progress", "99ms"}, "at least 100ms", nil},
		{"ErrProgressNegative", []string{"-progress", "-1s"}, "-progress must be 0", nil},
		{"ProgressAtTheFloor", []string{"-progress", "100ms"}, "", func(t *testing.T, o options) {
			if o.progress != 100*time.Millisecond {
				t.Errorf("got -progress %s, want 100ms", o.progress)
			}
		}},
		{"ProgressOff", []string{"-progress", "0"}, "", func(t *testing.T, o options) {
			if o.progress != 0 {
				t.Errorf("got -progress %s, want 0", o.progress)
			}
		}},
		{"ErrJSONAndHTMLOneFile", []string{"-json", "r.out", "-html", "./r.out"}, "-json and -html both name", nil},
		{"ErrJSONAndHTMLOneFileAbsolute", []string{"-json", "r.out", "-html", filepath.Join(wd, "sub") + "/../r.out"}, "-json and -html both name", nil},
		{"JSONAndHTMLTwoFiles", []string{"-json", "r.json", "-html", "r.html"}, "", func(t *testing.T, o options) {
			if o.jsonPath != "r.json" || o.htmlPath != "r.html" {
				t.Errorf("got -json %q, -html %q; want r.json and r.html", o.jsonPath, o.htmlPath)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseOptions(append([]string{"loadtest"}, tc.args...), io.Discard)
			if tc.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errPart) {
					t.Fatalf("parseOptions(%q) error %v, want one containing %q", tc.args, err, tc.errPart)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseOptions(%q) error %v, want none", tc.args, err)
			}
			tc.check(t, o)
		})
	}
}

func TestFromDue(t *testing.T) {
	due := time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	tests := []struct {
		name        string
		picked      time.Time // vegeta's stamp
		sent        time.Time // when the transport got it
		latency     time.Duration
		wantLatency time.Duration
		wantLate    time.Duration
	}{
		{"OnTime", due, due, ms(3), ms(3), 0},
		{"ANanosecondEarly", due.Add(-1), due.Add(-1), ms(3), ms(3), 0},
		// Waited a second for a worker: that second is the user's too.
		{"Late", due.Add(time.Second), due.Add(time.Second), ms(3), time.Second + ms(3), time.Second},
		// Picked up on time, then waited 500ms for an idle user, which
		// vegeta's latency holds: the request left late all the same.
		{"WaitedForAUser", due, due.Add(ms(500)), ms(503), ms(503), ms(500)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			latency, late := fromDue(&vegeta.Result{Timestamp: tc.picked, Latency: tc.latency}, due, tc.sent)
			if latency != tc.wantLatency || late != tc.wantLate {
				t.Errorf("fromDue = %s, %s; want %s, %s", latency, late, tc.wantLatency, tc.wantLate)
			}
		})
	}
}

func TestSendWindow(t *testing.T) {
	tests := []struct {
		name             string
		interruptedAt    time.Duration
		requestsRanOut   bool
		closedLastAnswer time.Duration
		want             time.Duration
	}{
		{"Completed", 0, false, 0, 10 * time.Second},
		{"Interrupted", 3 * time.Second, false, 0, 3 * time.Second},
		{"InterruptedAfterTheLastSend", 11 * time.Second, false, 0, 10 * time.Second},
		{"MaxRequestsEndedTheOpenModel", 0, true, 0, 0},
		{"MaxRequestsEndedTheClosedModel", 0, true, 2 * time.Second, 2 * time.Second},
		{"ClosedModelCompleted", 0, false, 10*time.Second + 5*time.Millisecond, 10 * time.Second},
	}
	for _, tc := range tests {
		if got := sendWindow(10*time.Second, tc.interruptedAt, tc.requestsRanOut, tc.closedLastAnswer); got != tc.want {
			t.Errorf("%s: sendWindow = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestOnSignals(t *testing.T) {
	tests := []struct {
		name   string
		second os.Signal
		want   int
	}{
		{"SecondInterrupt", os.Interrupt, 130},
		{"SecondTerminate", syscall.SIGTERM, 143},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sigs := make(chan os.Signal)
			cancelled := make(chan struct{})
			exited := make(chan int, 1)
			go onSignals(sigs, func() { close(cancelled) }, func(code int) { exited <- code }, io.Discard)
			sigs <- os.Interrupt
			<-cancelled // the first signal cancels the run and exits nothing
			select {
			case code := <-exited:
				t.Fatalf("exited %d after one signal, want the run to report", code)
			default:
			}
			sigs <- tc.second
			if got := <-exited; got != tc.want {
				t.Errorf("exit code %d, want %d", got, tc.want)
			}
		})
	}
}

// TestSetupRequestsAreBounded: against a target that never answers, a
// set-up request gives up at -timeout, and the set-up at -setup-timeout,
// whichever comes first.
func TestSetupRequestsAreBounded(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		errPart string
	}{
		{"Timeout", []string{"-timeout", "500ms"}, "Client.Timeout exceeded"},
		{"SetupTimeout", []string{"-setup-timeout", "500ms"}, "set-up deadline (-setup-timeout) passed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select { // answers nothing
				case <-r.Context().Done():
				case <-release:
				}
			}))
			defer srv.Close()
			defer close(release) // before Close, which waits for the handlers
			// Bounds the test itself, should the flags bound nothing.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			began := time.Now()
			err := run(ctx, append([]string{"loadtest", "-target", srv.URL, "-users", "4", "-progress", "0"}, tc.args...), io.Discard, io.Discard)
			if took := time.Since(began); took > 1500*time.Millisecond {
				t.Errorf("set-up gave up after %s, want about 500ms", took)
			}
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Errorf("got %v, want an error containing %q", err, tc.errPart)
			}
		})
	}
}

// TestReportsNamingOneFileAreRefused: -json and -html that would write one
// file, however the two paths spell it, are refused; two files are not.
func TestReportsNamingOneFileAreRefused(t *testing.T) {
	dir := t.TempDir()
	in := func(name string) string { return filepath.Join(dir, name) }
	if err := os.WriteFile(in("r.out"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in("other.out"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(in("real"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct{ target, name string }{
		{"r.out", "symlink.out"},           // to an existing file
		{"new.out", "dangling.out"},        // to one not written yet
		{"real", "linkdir"},                // a directory
		{"symlink.out", "symlink2.out"},    // a link to a link
		{"other.out", "symlink-other.out"}, // to another file
	} {
		if err := os.Symlink(l.target, in(l.name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(in("r.out"), in("hardlink.out")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		json, html string
		refused    bool
	}{
		{"SamePath", in("r.out"), in("r.out"), true},
		{"DotSlash", "./r.out", "r.out", true},
		{"SymlinkToTheFile", in("r.out"), in("symlink.out"), true},
		{"SymlinkToASymlink", in("symlink2.out"), in("r.out"), true},
		{"HardLink", in("hardlink.out"), in("r.out"), true},
		{"DanglingSymlinkToTheOther", in("new.out"), in("dangling.out"), true},
		{"ThroughALinkedDirectory", in("linkdir/x.out"), in("real/x.out"), true},
		{"TwoFiles", in("r.out"), in("other.out"), false},
		{"SymlinkToAnotherFile", in("r.out"), in("symlink-other.out"), false},
		{"TwoNewFiles", in("a.json"), in("real/a.json"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseOptions([]string{"loadtest", "-json", tc.json, "-html", tc.html}, io.Discard)
			if got := err != nil && strings.Contains(err.Error(), "-json and -html both name"); got != tc.refused {
				t.Errorf("parseOptions(-json %s -html %s) error %v; want refused: %v", tc.json, tc.html, err, tc.refused)
			}
		})
	}
}

// TestHelpShowsOneDefault: the journey flags' defaults depend on the
// scenario, and -h shows that text alone, not flag's "(default ...)" of
// the value that stands for unset beside it.
func TestHelpShowsOneDefault(t *testing.T) {
	var help strings.Builder
	if _, err := parseOptions([]string{"loadtest", "-h"}, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parseOptions -h: %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{
		"profile reads per session (default 8 for mixed, 3 for churn)\n",
		"session lists per session (default 1 for mixed, 0 for churn)\n",
		"token refreshes per session (default 1 for mixed, 0 for churn)\n",
	} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("-h lacks %q (one default, ending the line):\n%s", want, help.String())
		}
	}
}
