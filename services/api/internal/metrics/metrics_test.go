package metrics_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"redis-session-app/services/api/internal/metrics"
)

func TestNewRegistersContractMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics.New(reg, "v1.2.3", "abc123")

	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	got := map[string]bool{}
	for _, f := range families {
		got[f.GetName()] = true
	}
	// The request metrics have no series before the first request, so
	// they are checked by TestRequestMetricsLabels instead.
	for _, name := range []string{
		"api_logins_total",
		"api_sessions_created_total",
		"api_sessions_revoked_total",
		"api_ratelimit_rejections_total",
		"api_redis_errors_total",
		"api_redis_up",
		"api_build_info",
		"go_goroutines",
		"process_start_time_seconds",
	} {
		if !got[name] {
			t.Errorf("got no %s, want it registered", name)
		}
	}
}

func TestPreinitialisedLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, "dev", "unknown")

	tests := []struct {
		name string
		vec  *prometheus.CounterVec
		want []string
	}{
		{"logins", m.Logins, []string{"success", "invalid_credentials", "rate_limited", "busy", "unavailable"}},
		{"revoked", m.SessionsRevoked, []string{"logout", "logout_all", "revoke", "refresh", "cap"}},
		{"ratelimit", m.RateLimitRejections, []string{"user", "ip", "sessions"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, want := testutil.CollectAndCount(tc.vec), len(tc.want); got != want {
				t.Errorf("got %v series, want %v", got, want)
			}
			for _, v := range tc.want {
				if got := testutil.ToFloat64(tc.vec.WithLabelValues(v)); got != 0 {
					t.Errorf("%s: got %v, want 0", v, got)
				}
			}
		})
	}
}

// TestRedisUpStartsAtZero: until a probe has succeeded, Redis counts as
// down, so an alert fires for a replica that never reached it.
func TestRedisUpStartsAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics.New(reg, "dev", "unknown")
	want := `
# HELP api_redis_up 1 when the last background probe of Redis (a write, about every second) succeeded, else 0.
# TYPE api_redis_up gauge
api_redis_up 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "api_redis_up"); err != nil {
		t.Error(err)
	}
}

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics.New(reg, "v1.2.3", "abc123")

	want := `
# HELP api_build_info Always 1; the labels name the build that runs.
# TYPE api_build_info gauge
api_build_info{revision="abc123",version="v1.2.3"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "api_build_info"); err != nil {
		t.Error(err)
	}
}

func TestRequestMetricsLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, "dev", "unknown")
	m.HTTPRequests.WithLabelValues("/profile", "GET", "200").Inc()
	m.HTTPDuration.WithLabelValues("/profile", "GET").Observe(0.001)

	if got := testutil.ToFloat64(m.HTTPRequests.WithLabelValues("/profile", "GET", "200")); got != 1 {
		t.Errorf("got %v, want 1", got)
	}
	if got, want := testutil.CollectAndCount(reg, "api_http_request_duration_seconds"), 1; got != want {
		t.Errorf("got %v histogram series, want %v", got, want)
	}
}

func TestNewOnRegistryWithRuntimeCollectors(t *testing.T) {
	// A caller may have registered the Go and process collectors already;
	// New must leave them and not panic.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("got panic %v, want none", r)
		}
	}()
	metrics.New(reg, "dev", "unknown")
	if got := testutil.CollectAndCount(reg, "go_goroutines"); got != 1 {
		t.Errorf("got %v go_goroutines series, want 1", got)
	}
}
