package session

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Names of the rate limits, as reported in RateDecision.Limit and used as
// metric labels.
const (
	LimitIP   = "ip"
	LimitUser = "user"
)

// Limit allows Rate attempts per Period. Its burst is Rate too: a client
// that has been quiet may use the whole allowance at once.
type Limit struct {
	Rate   int
	Period time.Duration
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
// its period is not a second, minute or hour.
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
	// Limit names the limit that refused: LimitUser or LimitIP.
	Limit string
}
