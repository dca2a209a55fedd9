package pace_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"redis-session-app/loadtest/internal/pace"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want string
		dur  time.Duration
		ok   bool
	}{
		{"10s@1000,30s@5000,10s@0", "10s@1000,30s@5000,10s@0", 50 * time.Second, true},
		{"0s@200, 1m@200/s", "200/s for 1m0s", time.Minute, true},
		{"10s", "", 0, false},
		{"10s@-5", "", 0, false},
		{"x@5", "", 0, false},
		{"0s@100", "", 0, false},
		{"10s@NaN", "", 0, false},
		{"1s@1000000", "1s@1e+06", time.Second, true},
		{"1s@1000001", "", 0, false},
		{"1s@1e308,1s@1.7e308", "", 0, false},
		{"1s@Inf", "", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			s, err := pace.Parse(tc.in)
			if got := err == nil; got != tc.ok {
				t.Fatalf("Parse(%q) error %v, want ok %v", tc.in, err, tc.ok)
			}
			if !tc.ok {
				return
			}
			if got := s.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
			if got := s.Duration(); got != tc.dur {
				t.Errorf("Duration() = %s, want %s", got, tc.dur)
			}
		})
	}
}

func TestRateAndExpected(t *testing.T) {
	s, err := pace.Parse("10s@1000,30s@5000,10s@0")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		at       time.Duration
		rate     float64
		expected float64
	}{
		{0, 0, 0},
		{5 * time.Second, 500, 1250},
		{10 * time.Second, 1000, 5000},
		{25 * time.Second, 3000, 5000 + 15*2000},
		{40 * time.Second, 0, 5000 + 90000}, // a stage's end is the next one's start
		{45 * time.Second, 2500, 95000 + 5*3750},
		{50 * time.Second, 0, 95000 + 25000},
		{time.Hour, 0, 120000},
	}
	for _, tc := range tests {
		if got := s.Rate(tc.at); tc.at != 40*time.Second && math.Abs(got-tc.rate) > 1e-6 {
			t.Errorf("Rate(%s) = %g, want %g", tc.at, got, tc.rate)
		}
		if got := s.Expected(tc.at); math.Abs(got-tc.expected) > 1e-6 {
			t.Errorf("Expected(%s) = %g, want %g", tc.at, got, tc.expected)
		}
	}
}

// TestPaceFollowsSchedule replays the pacer as vegeta's attack loop does and
// checks that the arrivals land where the schedule puts them.
func TestPaceFollowsSchedule(t *testing.T) {
	for _, spec := range []string{"2s@100,2s@400,1s@0", "0s@1000,3s@1000", "1s@0,1s@50"} {
		t.Run(spec, func(t *testing.T) {
			s, err := pace.Parse(spec)
			if err != nil {
				t.Fatal(err)
			}
			var (
				elapsed time.Duration
				hits    uint64
			)
			for {
				wait, stop := s.Pace(elapsed, hits)
				if stop {
					break
				}
				if wait < 0 {
					t.Fatalf("Pace(%s, %d) waits %s", elapsed, hits, wait)
				}
				elapsed += wait
				hits++
				if want := s.Expected(elapsed); math.Abs(float64(hits)-want) > 1.001 {
					t.Fatalf("after %d hits at %s the schedule expects %g", hits, elapsed, want)
				}
				if hits > 1e6 {
					t.Fatal("pacer never stops")
				}
			}
			if want := s.Expected(s.Duration()); math.Abs(float64(hits)-want) > 1.001 {
				t.Errorf("got %d hits, want %g", hits, want)
			}
		})
	}
}

func TestPaceCatchesUpWhenBehind(t *testing.T) {
	s := pace.Constant(1000, 10*time.Second)
	if wait, stop := s.Pace(time.Second, 10); wait != 0 || stop {
		t.Errorf("Pace(1s, 10 hits) = %s, %v, want 0, false: 990 arrivals are overdue", wait, stop)
	}
}

func TestDue(t *testing.T) {
	ramp, err := pace.Parse("2s@100")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		sched pace.Schedule
		n     uint64
		want  time.Duration
		ok    bool
	}{
		{"ConstantFirst", pace.Constant(100, time.Second), 1, 10 * time.Millisecond, true},
		{"ConstantLast", pace.Constant(100, time.Second), 100, time.Second, true},
		{"ConstantPastTheEnd", pace.Constant(100, time.Second), 101, 0, false},
		// 0 to 100/s over 2s: n arrivals by t when 25t² = n.
		{"RampFirst", ramp, 1, 200 * time.Millisecond, true},
		{"RampLast", ramp, 100, 2 * time.Second, true},
		{"TooSparseForOne", pace.Constant(0.5, time.Second), 1, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.sched.Due(tc.n)
			if ok != tc.ok || (ok && (got-tc.want).Abs() > time.Microsecond) {
				t.Errorf("Due(%d) = %s, %v; want %s, %v", tc.n, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestPaceSendsNothingEarly replays the pacer with sleeps that overshoot a
// little, as real ones do, and wants every arrival sent no earlier than the
// schedule makes it due (0.5/s for 1s makes none).
func TestPaceSendsNothingEarly(t *testing.T) {
	for _, spec := range []string{"0s@100,1s@100", "1s@200", "0s@0.5,1s@0.5"} {
		t.Run(spec, func(t *testing.T) {
			s, err := pace.Parse(spec)
			if err != nil {
				t.Fatal(err)
			}
			// The attack loop's first call comes a little after the start.
			elapsed := 50 * time.Microsecond
			var hits uint64
			for {
				wait, stop := s.Pace(elapsed, hits)
				if stop {
					break
				}
				elapsed += wait + 50*time.Microsecond
				due, ok := s.Due(hits + 1)
				if !ok || elapsed < due {
					t.Fatalf("arrival %d sent at %s, due at %s (%v)", hits+1, elapsed, due, ok)
				}
				hits++
			}
		})
	}
}

// TestDueOfEveryArrival walks every arrival of schedules that ramp down to
// 0, where the last arrival of the ramp solves a quadratic whose
// discriminant is 0 and rounding could make it negative: every due time
// must lie within the schedule, in order, and Pace must never ask for a
// wait past the schedule's end (a NaN made one of centuries, which
// nothing could interrupt).
func TestDueOfEveryArrival(t *testing.T) {
	specs := []string{"10s@7,50s@0", "30s@2000,30s@0", "1m@500,1m@0", "10s@100,10s@0,10s@100", "10s@1000,30s@5000,10s@0"}
	for r := 1; r <= 40; r++ {
		for d := 1; d <= 30; d += 7 {
			specs = append(specs, fmt.Sprintf("10s@%d,%ds@0", r, d))
		}
	}
	for _, spec := range specs {
		s, err := pace.Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		total := s.Duration()
		n := uint64(math.Floor(s.Expected(total)))
		var prev time.Duration
		for i := uint64(1); i <= n; i++ {
			due, ok := s.Due(i)
			if !ok || due < prev || due > total {
				t.Fatalf("%s: arrival %d of %d due at %v (ok %v), want in [%v, %v]", spec, i, n, due, ok, prev, total)
			}
			if wait, stop := s.Pace(prev, i-1); !stop && (wait < 0 || prev+wait > total) {
				t.Fatalf("%s: Pace(%v, %d) waits %v, past the schedule's end %v", spec, prev, i-1, wait, total)
			}
			prev = due
		}
	}
}
