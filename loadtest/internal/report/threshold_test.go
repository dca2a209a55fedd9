package report_test

import (
	"strings"
	"testing"
	"time"

	"redis-session-app/loadtest/internal/report"
	"redis-session-app/loadtest/internal/scenario"
)

func TestCheck(t *testing.T) {
	base := func() *report.Summary {
		asked := 1000.0
		return &report.Summary{
			Requests: 1000, Errors: 5, ErrorRate: 0.005,
			AskedRate: &asked, AchievedRate: 990,
			Kinds: []report.KindSummary{{Kind: scenario.Profile, Requests: 1000, Latency: report.Latency{P99: 4.2}}},
			All:   report.KindSummary{Kind: "all", Requests: 1000, Latency: report.Latency{P99: 4.2}},
		}
	}
	tests := []struct {
		name   string
		limits report.Limits
		change func(*report.Summary)
		pass   bool
	}{
		{"OK", report.Limits{MaxErrorRate: 0.01}, nil, true},
		{"ErrWrongAnswerAlwaysFails", report.Limits{MaxErrorRate: 1}, func(s *report.Summary) { s.Wrong = 1 }, false},
		{"ErrErrorRate", report.Limits{MaxErrorRate: 0.001}, nil, false},
		{"ErrNoRequests", report.Limits{MaxErrorRate: 1}, func(s *report.Summary) { s.Requests, s.ErrorRate = 0, 0 }, false},
		{"P99Met", report.Limits{MaxErrorRate: 1, MaxP99: map[scenario.Kind]time.Duration{"profile": 5 * time.Millisecond}}, nil, true},
		{"ErrP99", report.Limits{MaxErrorRate: 1, MaxP99: map[scenario.Kind]time.Duration{"profile": 4 * time.Millisecond}}, nil, false},
		{"ErrP99All", report.Limits{MaxErrorRate: 1, MaxP99: map[scenario.Kind]time.Duration{"all": 4 * time.Millisecond}}, nil, false},
		{"ErrP99KindWithoutRequests", report.Limits{MaxErrorRate: 1, MaxP99: map[scenario.Kind]time.Duration{"login": time.Second}}, nil, false},
		{"MinRateMet", report.Limits{MaxErrorRate: 1, MinRate: 990}, nil, true},
		{"ErrMinRate", report.Limits{MaxErrorRate: 1, MinRate: 991}, nil, false},
		{"ShortfallWithoutStrictPasses", report.Limits{MaxErrorRate: 1}, func(s *report.Summary) { s.Shortfall = true }, true},
		{"ErrShortfallStrict", report.Limits{MaxErrorRate: 1, Strict: true}, func(s *report.Summary) { s.Shortfall = true }, false},
		{"ErrInterrupted", report.Limits{MaxErrorRate: 1}, func(s *report.Summary) { s.Interrupted = true }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			if tc.change != nil {
				tc.change(s)
			}
			if got := tc.limits.Check(s); got != tc.pass {
				t.Errorf("Check = %v, want %v; checks %+v", got, tc.pass, s.Thresholds)
			}
			if got := len(s.Breaches()) == 0; got != tc.pass {
				t.Errorf("Breaches() = %q, want none: %v", s.Breaches(), tc.pass)
			}
		})
	}
}

func TestParseP99(t *testing.T) {
	kinds := []scenario.Kind{scenario.Login, scenario.Profile}
	tests := []struct {
		in   string
		kind scenario.Kind
		d    time.Duration
		ok   bool
	}{
		{"profile=5ms", "profile", 5 * time.Millisecond, true},
		{"all=1s", "all", time.Second, true},
		{"logout=5ms", "", 0, false},
		{"profile", "", 0, false},
		{"profile=fast", "", 0, false},
		{"profile=-1ms", "", 0, false},
	}
	for _, tc := range tests {
		k, d, err := report.ParseP99(tc.in, kinds)
		if (err == nil) != tc.ok || k != tc.kind || d != tc.d {
			t.Errorf("ParseP99(%q) = %q, %s, %v; want %q, %s, ok %v", tc.in, k, d, err, tc.kind, tc.d, tc.ok)
		}
	}
}

func TestMinRateBreachShowsEnoughDigits(t *testing.T) {
	tests := []struct {
		achieved, limit float64
		want            string
	}{
		{1.95, 2, "achieved rate 1.9/s, want ≥ 2/s"},
		{1000.4, 1000.5, "achieved rate 1000.4/s, want ≥ 1000.5/s"},
		{999.99, 1000, "achieved rate 999.99/s, want ≥ 1000/s"},
		{12, 1000, "achieved rate 12/s, want ≥ 1000/s"},
	}
	for _, tc := range tests {
		s := &report.Summary{Requests: 1, AchievedRate: tc.achieved}
		report.Limits{MaxErrorRate: 1, MinRate: tc.limit}.Check(s)
		if got := strings.Join(s.Breaches(), "; "); got != tc.want {
			t.Errorf("achieved %g against %g: breaches %q, want %q", tc.achieved, tc.limit, got, tc.want)
		}
	}
}
