package scenario

import (
	"math"
	"net/http"
	"testing"
	"time"
)

func TestRetryWait(t *testing.T) {
	now := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	tests := []struct {
		value  string
		want   time.Duration
		wantOK bool
	}{
		{"1", time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		// None asked: still a pause, not a tight loop of POSTs.
		{"0", minRetryWait, true},
		// Past what a Duration holds: the longest wait, not a negative one.
		{"9223372036", 9223372036 * time.Second, true},
		{"9223372037", math.MaxInt64, true},
		{"18446744073709551616", math.MaxInt64, true},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{"Wednesday, 02-Dec-26 03:01:00 GMT", time.Minute, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), minRetryWait, true},
		{"", 0, false},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			got, ok := retryWait(tc.value, now)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("retryWait(%q) = %s, %v; want %s, %v", tc.value, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}
