// Package pace schedules the arrivals of an open-model load test: a rate
// that holds or ramps through stages, independent of how fast the target
// answers, as a vegeta.Pacer.
package pace

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Stage moves the rate linearly, over Duration, from where the previous
// stage ended (0 before the first) to Rate arrivals per second. A stage of
// zero duration jumps to its rate.
type Stage struct {
	Duration time.Duration
	Rate     float64
}

// Schedule is a sequence of stages; it implements vegeta.Pacer.
type Schedule struct {
	stages []Stage
}

var _ vegeta.Pacer = Schedule{}

// Constant returns a schedule that holds rate for d.
func Constant(rate float64, d time.Duration) Schedule {
	return Schedule{stages: []Stage{{0, rate}, {d, rate}}}
}

// Parse reads stages written "10s@1000,30s@5000,10s@0" (a rate may end in
// "/s").
func Parse(s string) (Schedule, error) {
	var stages []Stage
	for part := range strings.SplitSeq(s, ",") {
		d, r, ok := strings.Cut(strings.TrimSpace(part), "@")
		if !ok {
			return Schedule{}, fmt.Errorf("stage %q: want DURATION@RATE, e.g. 30s@5000", part)
		}
		dur, err := time.ParseDuration(d)
		if err != nil || dur < 0 {
			return Schedule{}, fmt.Errorf("stage %q: bad duration %q", part, d)
		}
		rate, err := ParseRate(r)
		if err != nil {
			return Schedule{}, fmt.Errorf("stage %q: %w", part, err)
		}
		stages = append(stages, Stage{dur, rate})
	}
	sch := Schedule{stages: stages}
	if sch.Duration() <= 0 {
		return Schedule{}, fmt.Errorf("stages %q last no time", s)
	}
	return sch, nil
}

// MaxRate bounds every rate a schedule holds, far above what one generator
// sends, so that the arrivals counted over any schedule stay finite.
const MaxRate = 1_000_000

// ParseRate reads "5000" or "5000/s", at most MaxRate.
func ParseRate(s string) (float64, error) {
	r, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "/s"), 64)
	if err != nil || !(r >= 0 && r <= MaxRate) {
		return 0, fmt.Errorf("bad rate %q: want a number of requests per second in [0, %d], e.g. 5000 or 5000/s", s, MaxRate)
	}
	return r, nil
}

// Duration is the length of the whole schedule.
func (s Schedule) Duration() time.Duration {
	var d time.Duration
	for _, st := range s.stages {
		d += st.Duration
	}
	return d
}

// String writes the schedule back in Parse's form, or a constant one as
// "RATE/s for DURATION".
func (s Schedule) String() string {
	if len(s.stages) == 2 && s.stages[0].Duration == 0 && s.stages[0].Rate == s.stages[1].Rate {
		return fmt.Sprintf("%g/s for %s", s.stages[1].Rate, s.stages[1].Duration)
	}
	parts := make([]string, len(s.stages))
	for i, st := range s.stages {
		parts[i] = fmt.Sprintf("%s@%g", st.Duration, st.Rate)
	}
	return strings.Join(parts, ",")
}

// Rate is the arrival rate (per second) at elapsed.
func (s Schedule) Rate(elapsed time.Duration) float64 {
	var from float64
	t := elapsed.Seconds()
	for _, st := range s.stages {
		d := st.Duration.Seconds()
		if t < d {
			return from + (st.Rate-from)*t/d
		}
		t -= d
		from = st.Rate
	}
	return 0
}

// Expected is how many arrivals the schedule makes in [0, elapsed].
func (s Schedule) Expected(elapsed time.Duration) float64 {
	var from, n float64
	t := elapsed.Seconds()
	for _, st := range s.stages {
		d := st.Duration.Seconds()
		if t <= d {
			return n + from*t + (st.Rate-from)*t*t/(2*d)
		}
		n += (from + st.Rate) / 2 * d
		t -= d
		from = st.Rate
	}
	return n
}

// Pace implements vegeta.Pacer: the next arrival is due when the schedule
// has made hits+1 of them. Arrivals never wait for answers; a generator that
// falls behind sends at once and catches up. It is behind only once that
// arrival is due: the moment after an arrival the schedule has made a
// fraction more than hits, and sending then would send arrivals in pairs.
func (s Schedule) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	if float64(hits+1) <= s.Expected(elapsed) {
		return 0, false
	}
	at, ok := s.when(float64(hits + 1))
	if !ok {
		return 0, true
	}
	return at - elapsed, false
}

// Due returns when the n-th arrival (counting from 1) is due, from the
// schedule's start, or false if the schedule ends before making n. The
// load generator measures latency from it, so that a request that left
// late (every worker busy, the generator short of CPU) still counts the
// time it waited.
func (s Schedule) Due(n uint64) (time.Duration, bool) {
	return s.when(float64(n))
}

// when returns the time at which the schedule has made n arrivals, or false
// if it ends before.
func (s Schedule) when(n float64) (time.Duration, bool) {
	var from, start float64
	for _, st := range s.stages {
		d := st.Duration.Seconds()
		inStage := (from + st.Rate) / 2 * d
		if n <= inStage && d > 0 {
			// Solve from*t + (rate-from)*t²/(2d) = n for t in [0, d].
			a := (st.Rate - from) / (2 * d)
			var t float64
			if math.Abs(a) < 1e-12 {
				t = n / from
			} else {
				// At a ramp to 0's last arrival the discriminant is 0,
				// which rounding can make a hair negative: NaN would
				// become a wait of centuries. Clamped, and t kept in the
				// stage.
				t = (-from + math.Sqrt(max(0, from*from+4*a*n))) / (2 * a)
			}
			t = min(max(t, 0), d)
			return time.Duration((start + t) * 1e9), true
		}
		n -= inStage
		start += d
		from = st.Rate
	}
	return 0, false
}
