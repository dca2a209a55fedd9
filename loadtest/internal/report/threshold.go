package report

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"redis-session-app/loadtest/internal/scenario"
)

// Limits are the thresholds a run must meet to pass. Wrong answers always
// fail a run, and so does an error rate above MaxErrorRate (1 turns that
// off); the other limits are off at their zero value.
type Limits struct {
	// MaxErrorRate is the largest share of requests that may fail.
	MaxErrorRate float64
	// MaxP99 bounds the p99 latency of a kind of request; the kind "all"
	// bounds every request together.
	MaxP99 map[scenario.Kind]time.Duration
	// MinRate is the lowest achieved rate, requests per second.
	MinRate float64
	// Strict fails an open-model run that fell short of the asked rate.
	Strict bool
}

// Check is one threshold and how the run did against it.
type Check struct {
	Name  string `json:"name"`
	Limit string `json:"limit"`
	Value string `json:"value"`
	OK    bool   `json:"ok"`
}

// ParseP99 reads a -max-p99 value, KIND=DURATION, for a scenario that sends
// kinds.
func ParseP99(s string, kinds []scenario.Kind) (scenario.Kind, time.Duration, error) {
	k, d, ok := strings.Cut(s, "=")
	if !ok {
		return "", 0, fmt.Errorf("-max-p99 %q: want KIND=DURATION, e.g. profile=5ms", s)
	}
	kind := scenario.Kind(k)
	if kind != "all" && !slices.Contains(kinds, kind) {
		names := []string{"all"}
		for _, k := range kinds {
			names = append(names, string(k))
		}
		return "", 0, fmt.Errorf("-max-p99 %q: this scenario sends no %q requests (kinds: %s)", s, k, strings.Join(names, ", "))
	}
	dur, err := time.ParseDuration(d)
	if err != nil || dur <= 0 {
		return "", 0, fmt.Errorf("-max-p99 %q: bad duration %q", s, d)
	}
	return kind, dur, nil
}

// RunCheck names the check that fails an interrupted run, whose figures,
// good as they may be, are not those of the run that was asked for.
const RunCheck = "run"

// Check judges s against the limits, sets s.Thresholds and reports whether
// every one was met.
func (l Limits) Check(s *Summary) bool {
	var checks []Check
	add := func(name, limit, value string, ok bool) {
		checks = append(checks, Check{name, limit, value, ok})
	}
	if s.Interrupted {
		add(RunCheck, "whole", fmt.Sprintf("interrupted after %.1fs", s.ElapsedSeconds), false)
	}
	add("wrong answers", "0", fmt.Sprint(s.Wrong), s.Wrong == 0)
	if s.Requests == 0 {
		add("requests", "> 0", "0", false)
	}
	add("error rate", fmt.Sprintf("≤ %.4g%%", 100*l.MaxErrorRate), fmt.Sprintf("%.4g%%", 100*s.ErrorRate), s.ErrorRate <= l.MaxErrorRate)
	for _, k := range slices.Sorted(maps.Keys(l.MaxP99)) {
		limit := l.MaxP99[k]
		ks, ok := s.kind(k)
		if !ok {
			add("p99 "+string(k), "≤ "+limit.String(), "no requests", false)
			continue
		}
		got := time.Duration(ks.Latency.P99 * float64(time.Millisecond))
		add("p99 "+string(k), "≤ "+limit.String(), FormatMs(ks.Latency.P99), got <= limit)
	}
	if l.MinRate > 0 {
		add("achieved rate", "≥ "+strconv.FormatFloat(l.MinRate, 'f', -1, 64)+"/s", rateAgainst(s.AchievedRate, l.MinRate)+"/s", s.AchievedRate >= l.MinRate)
	}
	if l.Strict && s.AskedRate != nil {
		add("achieved / asked rate", fmt.Sprintf("≥ %.0f%%", 100*ShortfallRatio),
			fmt.Sprintf("%.1f%%", 100*s.AchievedRate/max(*s.AskedRate, 1e-9)), !s.Shortfall)
	}
	s.Thresholds = checks
	for _, c := range checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// rateAgainst writes rate with as many decimals as limit has, or more
// when it takes more to keep it on its side of limit: rounded to a whole
// number 1.95/s would read as meeting a limit of 2/s that it breaches.
func rateAgainst(rate, limit float64) string {
	_, frac, _ := strings.Cut(strconv.FormatFloat(limit, 'f', -1, 64), ".")
	for d := len(frac); d < 6; d++ {
		str := strconv.FormatFloat(rate, 'f', d, 64)
		if r, _ := strconv.ParseFloat(str, 64); (r < limit) == (rate < limit) {
			return str
		}
	}
	return strconv.FormatFloat(rate, 'f', -1, 64)
}

func (s *Summary) kind(k scenario.Kind) (KindSummary, bool) {
	if k == "all" {
		return s.All, s.All.Requests > 0
	}
	for _, ks := range s.Kinds {
		if ks.Kind == k {
			return ks, true
		}
	}
	return KindSummary{}, false
}

// Breaches lists the thresholds that were not met, for an error message,
// but for the checks named in except.
func (s *Summary) Breaches(except ...string) []string {
	var out []string
	for _, c := range s.Thresholds {
		if !c.OK && !slices.Contains(except, c.Name) {
			out = append(out, fmt.Sprintf("%s %s, want %s", c.Name, c.Value, c.Limit))
		}
	}
	return out
}
