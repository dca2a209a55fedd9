package session_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"redis-session-app/services/api/internal/session"
)

func TestParseLimit(t *testing.T) {
	tests := []struct {
		in      string
		want    session.Limit
		wantErr bool
	}{
		{in: "10/m", want: session.Limit{Rate: 10, Period: time.Minute}},
		{in: "30/s", want: session.Limit{Rate: 30, Period: time.Second}},
		{in: "5/h", want: session.Limit{Rate: 5, Period: time.Hour}},
		{in: "1/s", want: session.Limit{Rate: 1, Period: time.Second}},
		{in: "007/m", want: session.Limit{Rate: 7, Period: time.Minute}},
		{in: "", wantErr: true},
		{in: "10", wantErr: true},
		{in: "/m", wantErr: true},
		{in: "10/", wantErr: true},
		{in: "0/m", wantErr: true},
		{in: "-1/m", wantErr: true},
		{in: "+1/m", wantErr: true},
		{in: "1.5/m", wantErr: true},
		{in: " 10/m", wantErr: true},
		{in: "10/m ", wantErr: true},
		{in: "10/M", wantErr: true},
		{in: "10/min", wantErr: true},
		{in: "10/d", wantErr: true},
		{in: "10/m/s", wantErr: true},
		{in: "99999999999999999999/s", wantErr: true},
		{in: "１０/m", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := session.ParseLimit(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				for _, s := range []string{"N/s", "N/m", "N/h"} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("got error %q, want it to name the format %s", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if back := got.String(); strings.TrimLeft(tc.in, "0") != back {
				t.Errorf("String: got %q, want %q", back, strings.TrimLeft(tc.in, "0"))
			}
		})
	}
}

func TestLimitStringOtherPeriod(t *testing.T) {
	l := session.Limit{Rate: 3, Period: 90 * time.Second}
	if got, want := l.String(), "3/1m30s"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestLimitBurst(t *testing.T) {
	tests := []struct {
		name string
		l    session.Limit
		want int
	}{
		{"DefaultIsRate", session.Limit{Rate: 10, Period: time.Minute}, 10},
		{"Set", session.Limit{Rate: 10, Period: time.Minute, Burst: 3}, 3},
		{"FivePeriods", session.Limit{Rate: 20, Period: time.Second}.WithBurstPeriods(5), 100},
		{"Saturates", session.Limit{Rate: math.MaxInt / 2, Period: time.Second}.WithBurstPeriods(5), math.MaxInt / 5 * 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.l.BurstOf(); got != tc.want {
				t.Errorf("got burst %d, want %d", got, tc.want)
			}
		})
	}
}

func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"10/m", "30/s", "5/h", "", "0/m", "-1/s", "1/", "/", "9223372036854775807/h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := session.ParseLimit(s)
		if err != nil {
			return
		}
		if l.Rate < 1 {
			t.Errorf("ParseLimit(%q): got %+v, want Rate >= 1", s, l)
		}
		switch l.Period {
		case time.Second, time.Minute, time.Hour:
		default:
			t.Errorf("ParseLimit(%q): got period %v, want s, m or h", s, l.Period)
		}
		if back, err := session.ParseLimit(l.String()); err != nil || back != l {
			t.Errorf("ParseLimit(%q.String()): got %v, %v, want %v", s, back, err, l)
		}
	})
}
