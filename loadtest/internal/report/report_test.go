package report_test

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"redis-session-app/loadtest/internal/pace"
	"redis-session-app/loadtest/internal/report"
	"redis-session-app/loadtest/internal/scenario"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestPercentile(t *testing.T) {
	oneTo := func(n int) []time.Duration {
		ds := make([]time.Duration, n)
		for i := range ds {
			ds[i] = ms(i + 1)
		}
		return ds
	}
	tests := []struct {
		name   string
		values []time.Duration
		p      float64
		want   time.Duration
	}{
		{"Empty", nil, 50, 0},
		{"One", []time.Duration{ms(7)}, 99.9, ms(7)},
		{"Median of 1..100", oneTo(100), 50, ms(50)},
		{"p90 of 1..100", oneTo(100), 90, ms(90)},
		{"p99 of 1..100", oneTo(100), 99, ms(99)},
		{"p99.9 of 1..100 is the max", oneTo(100), 99.9, ms(100)},
		{"p99.9 of 1..1000", oneTo(1000), 99.9, ms(999)},
		{"p100 is the max", oneTo(10), 100, ms(10)},
		{"Median of 1..9", oneTo(9), 50, ms(5)},
		{"Median of 1..10 is the lower middle", oneTo(10), 50, ms(5)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := report.Percentile(tc.values, tc.p); got != tc.want {
				t.Errorf("Percentile(p%g) = %s, want %s", tc.p, got, tc.want)
			}
		})
	}
}

func TestLatenciesOfShuffledInput(t *testing.T) {
	ds := make([]time.Duration, 1000)
	for i := range ds {
		ds[i] = ms(i + 1)
	}
	rand.Shuffle(len(ds), func(a, b int) { ds[a], ds[b] = ds[b], ds[a] })
	got := report.Latencies(ds)
	want := report.Latency{P50: 500, P90: 900, P99: 990, P999: 999, Max: 1000, Mean: 500.5}
	if got != want {
		t.Errorf("Latencies = %+v, want %+v", got, want)
	}
}

// collect feeds a collector n profile answers, one every 1 ms, with latency
// 1..n ms; every tenth is a 503 and the last one a wrong answer.
func collect(n int) (*report.Collector, time.Time) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := report.NewCollector(start)
	for i := range n {
		r := report.Record{
			Kind: scenario.Profile, At: start.Add(ms(i + 1)), Latency: ms(i + 1),
			Status: 200, Instance: []string{"api-1", "api-2"}[i%2],
		}
		switch {
		case i == n-1:
			r.Outcome = scenario.Outcome{Verdict: scenario.Wrong, Detail: "profile of another user returned"}
		case i%10 == 9:
			r.Status, r.Outcome = 503, scenario.Outcome{Verdict: scenario.Error, Detail: "503 Session store unavailable"}
		}
		c.Add(r)
	}
	return c, start
}

func TestSummarize(t *testing.T) {
	c, _ := collect(1000)
	sch := pace.Constant(1100, time.Second)
	s := c.Summarize(report.Run{Scenario: "read", Model: "open", Expected: sch.Expected, Rate: sch.Rate}, time.Second, 0)

	if s.Requests != 1000 || s.Errors != 99 || s.Wrong != 1 {
		t.Errorf("got %d requests, %d errors, %d wrong; want 1000, 99, 1", s.Requests, s.Errors, s.Wrong)
	}
	if s.ElapsedSeconds != 1 {
		t.Errorf("got elapsed %gs, want 1s", s.ElapsedSeconds)
	}
	if s.AchievedRate != 1000 || s.AskedRate == nil || *s.AskedRate != 1100 {
		t.Errorf("got achieved %g of asked %v, want 1000 of 1100", s.AchievedRate, s.AskedRate)
	}
	if !s.Shortfall {
		t.Error("got no shortfall, want one: 1000/s is below 95% of 1100/s")
	}
	if got, want := s.Kinds[0].Latency, (report.Latency{P50: 500, P90: 900, P99: 990, P999: 999, Max: 1000, Mean: 500.5}); got != want {
		t.Errorf("profile latency = %+v, want %+v", got, want)
	}
	if s.Statuses["200"] != 901 || s.Statuses["503"] != 99 {
		t.Errorf("statuses = %v, want 901 × 200 and 99 × 503", s.Statuses)
	}
	if len(s.Instances) != 2 || s.Instances[0].Share != 0.5 {
		t.Errorf("instances = %+v, want api-1 and api-2 with half each", s.Instances)
	}
	if len(s.WrongDetails) != 1 || s.WrongDetails[0].Count != 1 {
		t.Errorf("wrong details = %+v, want one", s.WrongDetails)
	}
	// Fifty 20ms buckets cover [0, 1s] and hold every request.
	if got := len(s.Series.Start); got != 50 {
		t.Fatalf("got %d buckets, want 50", got)
	}
	var n float64
	for i, r := range s.Series.Kinds[0].Rate {
		n += r * s.Series.Width[i]
	}
	if math.Abs(n-1000) > 1e-6 {
		t.Errorf("the buckets hold %g requests, want 1000", n)
	}
	if got := s.Series.Asked[0]; got != 1100 {
		t.Errorf("asked rate in the first bucket = %g, want 1100", got)
	}
}

func TestClosedModelHasNoAskedRate(t *testing.T) {
	c, _ := collect(10)
	s := c.Summarize(report.Run{Scenario: "read", Model: "closed", Workers: 4}, 10*time.Millisecond, 0)
	if s.AskedRate != nil || s.Shortfall || s.Series.Asked != nil {
		t.Errorf("got asked %v, shortfall %v, asked series %v; want none in the closed model", s.AskedRate, s.Shortfall, s.Series.Asked)
	}
}

func TestBucketFor(t *testing.T) {
	tests := []struct {
		window, want time.Duration
	}{
		// Short runs get at least 30 buckets, none under 10ms.
		{ms(100), ms(10)},
		{ms(300), ms(10)},
		{ms(599), ms(10)},
		{ms(600), ms(20)},
		{time.Second, ms(20)},
		{1500 * time.Millisecond, ms(50)},
		{2 * time.Second, ms(50)},
		{3 * time.Second, ms(100)},
		{10 * time.Second, ms(200)},
		{29 * time.Second, ms(500)},
		// From 30s on, one second or wider, at most about 150 buckets.
		{30 * time.Second, time.Second},
		{150 * time.Second, time.Second},
		{5 * time.Minute, 2 * time.Second},
		{10 * time.Minute, 4 * time.Second},
	}
	for _, tc := range tests {
		if got := report.BucketFor(tc.window); got != tc.want {
			t.Errorf("BucketFor(%s) = %s, want %s", tc.window, got, tc.want)
		}
	}
}

func TestWriters(t *testing.T) {
	c, _ := collect(200)
	s := c.Summarize(report.Run{Scenario: "read", Target: "http://127.0.0.1:8080", Model: "closed", Workers: 2}, 200*time.Millisecond, 3)
	report.Limits{MaxErrorRate: 0.2}.Check(s)

	var text bytes.Buffer
	if err := s.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"profile", "api-1", "503: 19", "WRONG ANSWERS", "BREACHED", "3 requests waited"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}

	var js bytes.Buffer
	if err := s.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Requests uint64 `json:"requests"`
		Kinds    []struct {
			LatencyMs map[string]float64 `json:"latencyMs"`
		} `json:"kinds"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Requests != 200 || back.Kinds[0].LatencyMs["p99.9"] != 200 {
		t.Errorf("JSON report = %s (%v), want 200 requests and p99.9 200ms", js.String(), err)
	}

	var html bytes.Buffer
	if err := s.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	page := html.String()
	for _, want := range []string{`id="latency"`, `id="throughput"`, "uPlot", "api-2"} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	for _, banned := range []string{"<script src=", "<link "} {
		if strings.Contains(page, banned) {
			t.Errorf("HTML report loads something from outside (%q): it must open offline", banned)
		}
	}
}

func TestLateSendsAreReported(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := report.NewCollector(start)
	for i, delay := range []time.Duration{0, ms(50), ms(1200), ms(300)} {
		c.Add(report.Record{Kind: scenario.Profile, At: start.Add(ms(10 * i)), Latency: delay + ms(1), SendDelay: delay, Status: 200})
	}
	s := c.Summarize(report.Run{Scenario: "read", Model: "open"}, 0, 0)
	if s.MaxSendDelayMs != 1200 || s.LateSends != 2 {
		t.Errorf("got max send delay %gms and %d late sends, want 1200ms and 2", s.MaxSendDelayMs, s.LateSends)
	}
	var text, html bytes.Buffer
	if err := s.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"text": text.String(), "HTML": html.String()} {
		if !strings.Contains(out, "latencies count from when requests were due") || !strings.Contains(out, "up to 1200ms late") {
			t.Errorf("%s report lacks the late-send warning", name)
		}
	}
}

// TestCountsInWords: a count of one is "1 request", not "1 requests".
func TestCountsInWords(t *testing.T) {
	tests := []struct {
		late, waits uint64
		want        []string
	}{
		{1, 1, []string{"WARNING: 1 request left more than 100ms after it was due", "1 request waited for an idle user (its wait counts in its latency)"}},
		{2, 3, []string{"WARNING: 2 requests left more than 100ms after they were due", "3 requests waited for an idle user (their wait counts in their latency)"}},
	}
	for _, tc := range tests {
		s := &report.Summary{LateSends: tc.late, UserWaits: tc.waits, MaxSendDelayMs: 300}
		var text bytes.Buffer
		if err := s.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		out := text.String() + strings.Join(s.Warnings(), "\n")
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("report of %d late sends and %d waits lacks %q:\n%s", tc.late, tc.waits, w, out)
			}
		}
	}
}

// TestHeadlineCountsInWords: one worker, user and request read as such.
func TestHeadlineCountsInWords(t *testing.T) {
	for _, tc := range []struct {
		workers, users int
		requests       uint64
		want           string
	}{
		{1, 1, 1, "(closed model, 1 worker, 1 user): 1 request in"},
		{2, 3, 4, "(closed model, 2 workers, 3 users): 4 requests in"},
	} {
		s := &report.Summary{Scenario: "read", Target: "http://127.0.0.1:1", Model: "closed", Workers: tc.workers, Users: tc.users, Requests: tc.requests}
		if got := s.Headline(); !strings.Contains(got, tc.want) {
			t.Errorf("Headline() = %q, want it to contain %q", got, tc.want)
		}
	}
}

// TestInterruptedRunIsReported: every form of the report of an interrupted
// run says so, and its run check fails, however good its figures.
func TestInterruptedRunIsReported(t *testing.T) {
	c, _ := collect(10)
	s := c.Summarize(report.Run{Scenario: "read", Model: "closed", Workers: 1}, 1500*time.Millisecond, 0)
	s.Interrupted = true
	if (report.Limits{MaxErrorRate: 1}).Check(s) {
		t.Error("Check passed an interrupted run")
	}
	if got := s.Breaches(report.RunCheck); len(got) != 1 || !strings.Contains(got[0], "wrong answers") {
		t.Errorf("Breaches but the run check = %q, want the wrong answer alone", got)
	}
	var text, js, html bytes.Buffer
	for _, w := range []struct {
		out   *bytes.Buffer
		write func(io.Writer) error
	}{{&text, s.WriteText}, {&js, s.WriteJSON}, {&html, s.WriteHTML}} {
		if err := w.write(w.out); err != nil {
			t.Fatal(err)
		}
	}
	for name, out := range map[string]string{"text": text.String(), "HTML": html.String()} {
		if !strings.Contains(out, "interrupted after 1.5s") {
			t.Errorf("%s report does not say the run was interrupted:\n%s", name, out)
		}
	}
	var back struct {
		Interrupted bool
		Thresholds  []report.Check
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || !back.Interrupted || back.Thresholds[0].Name != report.RunCheck || back.Thresholds[0].OK {
		t.Errorf("JSON report = %s (%v), want interrupted and a failed run check first", js.String(), err)
	}
}

// TestLowRatesKeepTheirDigits: the headline and the shortfall warning give
// a low rate the digits that tell it apart, as the table does.
func TestLowRatesKeepTheirDigits(t *testing.T) {
	tests := []struct {
		achieved, asked float64
		headline        string
		warning         string // "" when there is no shortfall
	}{
		{1.5, 10, "achieved 1.5/s of 10/s asked", "achieved 1.5 req/s, only 15.0% of the 10 req/s asked"},
		{3.5, 3.5, "achieved 3.5/s of 3.5/s asked", ""},
		{0.5, 0.5, "achieved 0.5/s of 0.5/s asked", ""},
		{0.025, 0.05, "achieved 0.025/s of 0.05/s asked", "achieved 0.025 req/s, only 50.0% of the 0.05 req/s asked"},
		{4321.4, 5000, "achieved 4321/s of 5000/s asked", "achieved 4321 req/s, only 86.4% of the 5000 req/s asked"},
	}
	for _, tc := range tests {
		asked := tc.asked
		s := &report.Summary{Run: report.Run{Model: "open"}, AchievedRate: tc.achieved, AskedRate: &asked, Shortfall: tc.warning != ""}
		if got := s.Headline(); !strings.HasSuffix(got, tc.headline) {
			t.Errorf("Headline() = %q, want it to end %q", got, tc.headline)
		}
		if got := s.ShortfallWarning(); !strings.Contains(got, tc.warning) || (tc.warning == "") != (got == "") {
			t.Errorf("ShortfallWarning() = %q, want %q", got, tc.warning)
		}
	}
}

// TestRatesAreOverTheWindow: rates are over the time the sending phase
// ran, whenever the last request left, and never over less than that.
func TestRatesAreOverTheWindow(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		sends       []time.Duration
		rate        float64
		window      time.Duration
		wantSeconds float64
		achieved    float64
		asked       float64
		shortfall   bool
	}{
		// One request 0.1ms in is not a rate of 10000/s over a 1s run.
		{"Sparse", []time.Duration{100 * time.Microsecond}, 1, time.Second, 1, 1, 1, false},
		// Interrupted at 500ms: judged on those 500ms.
		{"Interrupted", []time.Duration{ms(100), ms(200), ms(300), ms(400), ms(500)}, 10, ms(500), 0.5, 10, 10, false},
		{"ShortOfTheSchedule", []time.Duration{ms(100)}, 10, time.Second, 1, 1, 10, true},
		// A window shorter than the last send is taken to the last send.
		{"NeverShorterThanTheLastSend", []time.Duration{ms(100), ms(2000)}, 1, time.Second, 2, 1, 1, false},
		// 1.5/s for 1s makes one arrival: one request is no shortfall.
		{"WholeArrivals", []time.Duration{ms(667)}, 1.5, time.Second, 1, 1, 1.5, false},
		// The last arrival of a 10s schedule left at 12.5s: the requests
		// took 12.5s, but 0.2/s is what the schedule asked.
		{"LastSendAfterTheSchedule", []time.Duration{5 * time.Second, 12500 * time.Millisecond}, 0.2, 10 * time.Second, 12.5, 0.16, 0.2, false},
		// -max-requests ended the open model (a window of 0): the asked
		// rate is the schedule's until the last send.
		{"MaxRequestsEndedIt", []time.Duration{ms(500), 2 * time.Second}, 1, 0, 2, 1, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := report.NewCollector(start)
			for _, at := range tc.sends {
				c.Add(report.Record{Kind: scenario.Profile, At: start.Add(at), Latency: ms(1), Status: 200})
			}
			sch := pace.Constant(tc.rate, 10*time.Second)
			s := c.Summarize(report.Run{Model: "open", Expected: sch.Expected, Rate: sch.Rate}, tc.window, 0)
			if s.ElapsedSeconds != tc.wantSeconds || s.AchievedRate != tc.achieved || *s.AskedRate != tc.asked || s.Shortfall != tc.shortfall {
				t.Errorf("got %gs, achieved %g/s of %g/s asked, shortfall %v; want %gs, %g of %g, %v",
					s.ElapsedSeconds, s.AchievedRate, *s.AskedRate, s.Shortfall, tc.wantSeconds, tc.achieved, tc.asked, tc.shortfall)
			}
		})
	}
}

// TestLoginLimitHint: a run whose logins were answered 429 says which
// limits of the target refused them and how to raise them, and in the
// closed model that the refusals set its pace; 429s of other kinds, or
// none, give no such hint.
func TestLoginLimitHint(t *testing.T) {
	tests := []struct {
		name     string
		model    string
		kind     scenario.Kind
		statuses []int
		want     []string // nil: no hint
	}{
		{"LoginsRefusedOpen", "open", scenario.Login, []int{200, 429, 429, 429},
			[]string{"HINT: 3 of 4 logins were answered 429", "LOGIN_LIMIT_PER_USER", "LOGIN_LIMIT_PER_IP", "5 users", "nginx"}},
		{"LoginsRefusedClosed", "closed", scenario.Login, []int{429, 200},
			[]string{"HINT: 1 of 2 logins", "LOGIN_LIMIT_PER_USER=100000/m LOGIN_LIMIT_PER_IP=100000/m", "in the closed model a refused login comes back at once"}},
		{"LoginsAnswered", "closed", scenario.Login, []int{200, 200, 503}, nil},
		{"ProfilesRefused", "closed", scenario.Profile, []int{429, 429}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			c := report.NewCollector(start)
			for i, st := range tc.statuses {
				o := scenario.Outcome{Verdict: scenario.OK}
				if st != 200 {
					o = scenario.Outcome{Verdict: scenario.Error, Detail: "refused"}
				}
				c.Add(report.Record{Kind: tc.kind, At: start.Add(ms(i)), Latency: ms(1), Status: st, Outcome: o})
			}
			s := c.Summarize(report.Run{Scenario: "login", Model: tc.model, Users: 5}, time.Second, 0)
			hint := s.LoginLimitHint()
			if tc.want == nil {
				if hint != "" {
					t.Errorf("got hint %q, want none", hint)
				}
				return
			}
			for _, w := range tc.want {
				if !strings.Contains(hint, w) {
					t.Errorf("hint %q lacks %q", hint, w)
				}
			}
			if tc.model == "open" && strings.Contains(hint, "closed model") {
				t.Errorf("hint %q of an open-model run speaks of the closed model", hint)
			}
			var text bytes.Buffer
			if err := s.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), hint) {
				t.Errorf("the text report lacks the hint:\n%s", text.String())
			}
		})
	}
}

// TestJSONWithoutInfinity: whatever the schedule says, the JSON is written.
func TestJSONWithoutInfinity(t *testing.T) {
	c, _ := collect(10)
	inf := func(time.Duration) float64 { return math.Inf(1) }
	nan := func(time.Duration) float64 { return math.NaN() }
	s := c.Summarize(report.Run{Model: "open", Expected: inf, Rate: nan}, time.Second, 0)
	var js bytes.Buffer
	if err := s.WriteJSON(&js); err != nil {
		t.Errorf("WriteJSON: %v", err)
	}
}

// TestSeriesHasNoSliverBucket sends 500/s for the whole window and wants
// 500/s in every bucket, the last one included.
func TestSeriesHasNoSliverBucket(t *testing.T) {
	// widths is n buckets of width seconds, then those of rest.
	widths := func(n int, width float64, rest ...float64) []float64 {
		return append(slices.Repeat([]float64{width}, n), rest...)
	}
	tests := []struct {
		window    time.Duration
		wantWidth []float64
	}{
		{30 * time.Second, widths(30, 1)},
		{30*time.Second + ms(2), widths(29, 1, 1.002)},
		{30*time.Second + ms(600), widths(30, 1, 0.6)},
		{3 * time.Second, widths(30, 0.1)},
		{3*time.Second + ms(2), widths(29, 0.1, 0.102)},
		{3*time.Second + ms(60), widths(30, 0.1, 0.06)},
		{ms(300), widths(30, 0.01)},
		{ms(100), widths(10, 0.01)},
	}
	for _, tc := range tests {
		t.Run(tc.window.String(), func(t *testing.T) {
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			c := report.NewCollector(start)
			for at := ms(2); at <= tc.window; at += ms(2) {
				c.Add(report.Record{Kind: scenario.Profile, At: start.Add(at), Latency: ms(1), Status: 200})
			}
			s := c.Summarize(report.Run{Model: "closed"}, tc.window, 0)
			if !slices.EqualFunc(s.Series.Width, tc.wantWidth, func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }) {
				t.Fatalf("bucket widths %v, want %v", s.Series.Width, tc.wantWidth)
			}
			for i, r := range s.Series.Kinds[0].Rate {
				// A request more or less at the edges.
				if tol := 1/s.Series.Width[i] + 1e-6; math.Abs(r-500) > tol {
					t.Errorf("rate in bucket %d = %g, want 500 ± %g (rates %v)", i, r, tol, s.Series.Kinds[0].Rate)
				}
			}
		})
	}
}

// emptyRun is the report of a run that sent nothing, as -stages 2s@0 does.
func emptyRun(t *testing.T) *report.Summary {
	t.Helper()
	sch, err := pace.Parse("2s@0")
	if err != nil {
		t.Fatal(err)
	}
	s := report.NewCollector(time.Now()).Summarize(report.Run{Model: "open", Expected: sch.Expected, Rate: sch.Rate}, 2*time.Second, 0)
	report.Limits{}.Check(s)
	return s
}

func TestEmptyRunWritesEmptyLists(t *testing.T) {
	var js bytes.Buffer
	if err := emptyRun(t).WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Kinds     []any `json:"kinds"`
		Instances []any `json:"instances"`
		Series    struct {
			Kinds []any `json:"kinds"`
		} `json:"series"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Kinds == nil || back.Instances == nil || back.Series.Kinds == nil {
		t.Errorf("JSON of a run without requests has a null list, want []:\n%s", js.String())
	}
}

// TestPageScriptRuns runs the page's own script under node, with uPlot and
// the DOM stubbed, for a run with requests and one without, and looks at
// what it drew: with requests, both plots (latency and throughput over
// time) with points of the run's kind; without, the latency plot's place
// says there is nothing to plot and the throughput plot still shows the
// asked rate.
func TestPageScriptRuns(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	c, _ := collect(100)
	// plot is what the stub of uPlot was given for one plot.
	type plot struct {
		Series []string     `json:"series"`
		Data   [][]*float64 `json:"data"`
	}
	type drawn struct {
		Plots map[string][]plot `json:"plots"` // by the id of the element drawn in
		Texts map[string]string `json:"texts"`
	}
	// points counts the values of the series labelled label that are there.
	points := func(p plot, label string) int {
		n := 0
		for i, l := range p.Series {
			if l != label || i >= len(p.Data) {
				continue
			}
			for _, v := range p.Data[i] {
				if v != nil {
					n++
				}
			}
		}
		return n
	}
	tests := []struct {
		name    string
		sum     *report.Summary
		latency []string // series of the latency plot that must have points; nil: no plot
		thr     []string // the same for the throughput plot
	}{
		{"Requests", c.Summarize(report.Run{Model: "closed"}, time.Second, 0), []string{"profile p50", "profile p99"}, []string{"profile", "errors + wrong"}},
		{"Empty", emptyRun(t), nil, []string{"asked", "errors + wrong"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var page bytes.Buffer
			if err := tc.sum.WriteHTML(&page); err != nil {
				t.Fatal(err)
			}
			scripts := strings.Split(page.String(), "<script>")
			script, _, _ := strings.Cut(scripts[len(scripts)-1], "</script>")
			stubs := "var window = {innerWidth: 1000}; var plots = {}; var elements = {};" +
				"var document = {getElementById: function (id) { return elements[id] = elements[id] || {id: id}; }};" +
				"function uPlot(opts, data, el) {" +
				" data.forEach(function (d) { if (d.length !== data[0].length) throw new Error('ragged data'); });" +
				" (plots[el.id] = plots[el.id] || []).push({series: opts.series.map(function (s) { return s.label; }), data: data}); }\n"
			dump := "\nvar texts = {}; Object.keys(elements).forEach(function (id) { if (elements[id].textContent) texts[id] = elements[id].textContent; });" +
				"\nconsole.log(JSON.stringify({plots: plots, texts: texts}));\n"
			var stderr bytes.Buffer
			cmd := exec.Command(node, "-e", stubs+script+dump)
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("the page's script failed: %v\n%s", err, stderr.String())
			}
			var got drawn
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("reading what the script drew: %v\n%s", err, out)
			}
			for _, want := range []struct {
				id     string
				series []string
			}{{"latency", tc.latency}, {"throughput", tc.thr}} {
				ps := got.Plots[want.id]
				if want.series == nil {
					if len(ps) != 0 || !strings.Contains(got.Texts[want.id], "nothing to plot") {
						t.Errorf("%s: got %d plots and text %q, want no plot and a word that there is nothing to plot", want.id, len(ps), got.Texts[want.id])
					}
					continue
				}
				if len(ps) != 1 {
					t.Fatalf("%s: got %d plots, want 1", want.id, len(ps))
				}
				for _, label := range want.series {
					if n := points(ps[0], label); n == 0 {
						t.Errorf("%s: series %q has no points (series %v)", want.id, label, ps[0].Series)
					}
				}
			}
		})
	}
}

// TestProgressCountsTheAnswersOfTheInterval: each progress line is over
// the answers that came in since the previous one, in the order they came
// (Add's), whenever they were sent. A stall shows first as no answers,
// then as slow ones, not as an idle and fast target.
func TestProgressCountsTheAnswersOfTheInterval(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type answer struct {
		kind        scenario.Kind
		at, latency time.Duration // sent at, from start
	}
	fast := func(kind scenario.Kind, from time.Duration, n int) []answer {
		var as []answer
		for i := range n {
			as = append(as, answer{kind, from + time.Duration(i)*ms(100), ms(5)})
		}
		return as
	}
	lines := []struct {
		name     string
		answers  []answer // that came in before the line, in that order
		at       time.Duration
		requests uint64
		rate     float64
		p99      string
	}{
		{"Steady", fast(scenario.Profile, 0, 10), time.Second, 10, 10, "5.00ms"},
		{"Stalled", nil, 2 * time.Second, 10, 0, "-"},
		// The stalled requests, sent at 1.0s, are answered at last, then
		// one sent after them: all six came in in this interval.
		{"AnsweredLate", append(slices.Repeat([]answer{{scenario.Profile, time.Second, ms(1900)}}, 5),
			answer{scenario.Login, ms(2900), ms(5)}), 3 * time.Second, 16, 6, "1900ms"},
		// A line two seconds after the previous one: the rate is over both.
		{"AfterASkippedTick", fast(scenario.Login, 3*time.Second, 10), 5 * time.Second, 26, 5, "5.00ms"},
	}
	c := report.NewCollector(start)
	for _, l := range lines {
		for _, a := range l.answers {
			c.Add(report.Record{Kind: a.kind, At: start.Add(a.at), Latency: a.latency, Status: 200})
		}
		p := c.Progress(start.Add(l.at))
		if p.Requests != l.requests || p.Rate != l.rate || !strings.Contains(p.String(), "p99 "+l.p99+" ") {
			t.Errorf("%s: got %d requests, %g/s, line %q; want %d, %g/s, p99 %s", l.name, p.Requests, p.Rate, p, l.requests, l.rate, l.p99)
		}
	}
}
