package session

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Names of the rate limits, as reported in RateDecision.Limit and used as
// metric labels: per client IP and per username for login and register,
// per user for the listing of sessions.
const (
	LimitIP       = "ip"
	LimitUser     = "user"
	LimitSessions = "sessions"
)

// Limit allows Rate attempts per Period, smoothly (GCRA). Burst is how
// many attempts a client that has been quiet may make at once; zero means
// Rate, the whole allowance of one period.
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// BurstOf returns the burst l allows: Burst, or Rate when Burst is zero.
func (l Limit) BurstOf() int {
	if l.Burst == 0 {
		return l.Rate
	}
	return l.Burst
}

// WithBurstPeriods returns l with a burst of n periods' worth of its rate,
// at most math.MaxInt; n must be positive.
func (l Limit) WithBurstPeriods(n int) Limit {
	l.Burst = min(l.Rate, math.MaxInt/n) * n
	return l
}

// ParseLimit parses "N/s", "N/m" or "N/h" with N a positive integer into a
// limit of N per second, minute or hour.
func ParseLimit(s string) (Limit, error) {
	n, unit, ok := strings.Cut(s, "/")
	if !ok || n == "" || strings.Trim(n, "0123456789") != "" {
		return Limit{}, limitError(s)
	}
	rate, err := strconv.Atoi(n)
	if err != nil || rate < 1 {
		return Limit{}, limitError(s)
	}
	switch unit {
	case "s":
		return Limit{Rate: rate, Period: time.Second}, nil
	case "m":
		return Limit{Rate: rate, Period: time.Minute}, nil
	case "h":
		return Limit{Rate: rate, Period: time.Hour}, nil
	}
	return Limit{}, limitError(s)
}

func limitError(s string) error {
	return fmt.Errorf("%q is not a limit of the form N/s, N/m or N/h with N a positive integer", s)
}

// String writes l in the form ParseLimit reads, or as "N/<duration>" when
// its period is not a second, minute or hour. The burst is not written: the
// form has no place for it.
func (l Limit) String() string {
	switch l.Period {
	case time.Second:
		return strconv.Itoa(l.Rate) + "/s"
	case time.Minute:
		return strconv.Itoa(l.Rate) + "/m"
	case time.Hour:
		return strconv.Itoa(l.Rate) + "/h"
	}
	return strconv.Itoa(l.Rate) + "/" + l.Period.String()
}

// RateDecision is the answer of a rate limiter to one attempt.
type RateDecision struct {
	Allowed bool
	// RetryAfter is how long the client should wait when not allowed.
	RetryAfter time.Duration
	// Limit names the limit that refused: LimitUser, LimitIP or
	// LimitSessions.
	Limit string
}
