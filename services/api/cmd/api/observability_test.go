package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"redis-session-app/services/api/internal/redistest"
)

// TestMetrics checks the series dashboards and alerts depend on.
func TestMetrics(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	r := startReplica(t, baseEnv(rds.Addr(), "metrics"))
	r.register(t, "metered", pw)
	tok := r.login(t, "metered", pw)
	other := r.login(t, "metered", pw)
	id := current(t, r.sessions(t, other)).ID
	wantStatus(t, r.do(t, http.MethodDelete, "/auth/sessions/"+id, "", "X-Session-Id", tok), http.StatusNoContent)
	wantStatus(t, r.profile(t, tok), http.StatusOK)
	wantStatus(t, r.do(t, http.MethodGet, "/healthz", ""), http.StatusOK)
	wantStatus(t, r.do(t, http.MethodGet, "/readyz", ""), http.StatusOK)

	res := r.do(t, http.MethodGet, "/metrics", "")
	wantStatus(t, res, http.StatusOK)
	if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type got %q, want text/plain", ct)
	}
	text := string(res.body)

	for _, want := range []string{
		`api_http_requests_total{code="204",method="DELETE",route="/auth/sessions/:id"} 1`,
		`api_http_requests_total{code="200",method="GET",route="/profile"} 1`,
		`api_http_request_duration_seconds_bucket{method="GET",route="/profile",le="+Inf"} 1`,
		`api_logins_total{result="success"} 2`,
		`api_sessions_created_total 2`,
		`api_sessions_revoked_total{reason="revoke"} 1`,
		`api_build_info{revision="unknown",version="dev"} 1`,
		// The scrape itself, and nothing else.
		`api_http_requests_in_flight 1`,
		// Nothing failed: the handshake commands an older Redis refuses
		// (CLIENT SETINFO, CLIENT MAINT_NOTIFICATIONS) and NOSCRIPT are
		// not errors an alert should see.
		`api_redis_errors_total 0`,
		`api_redis_late_scripts_total 0`,
		`api_redis_pool_hit_total `,
		`api_redis_pool_conn_total_current `,
		`go_goroutines `,
		`process_cpu_seconds_total `,
	} {
		if !hasLinePrefix(text, want) {
			t.Errorf("metrics: no line starting %s", want)
		}
	}
	for _, unwanted := range []string{`route="/healthz"`, `route="/readyz"`, `route="/metrics"`, id} {
		if strings.Contains(text, unwanted) {
			t.Errorf("metrics contain %s", unwanted)
		}
	}
}

func hasLinePrefix(text, prefix string) bool {
	for line := range strings.SplitSeq(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}

// TestLogs checks that every log line is JSON naming the instance, and that
// no line holds a token or a password.
func TestLogs(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	r := startReplica(t, baseEnv(rds.Addr(), "logs")) // LOG_LEVEL=debug
	const secret = "pa55word-that-must-not-leak"
	r.register(t, "logger", secret)
	wantStatus(t, r.do(t, http.MethodPost, "/auth/login", credentials("logger", "wrong-"+secret)), http.StatusUnauthorized)
	tok := r.login(t, "logger", secret)
	wantStatus(t, r.profile(t, tok), http.StatusOK)
	wantStatus(t, r.do(t, http.MethodGet, "/profile", "", "Authorization", "Bearer "+tok), http.StatusOK)
	wantStatus(t, r.do(t, http.MethodGet, "/profile", "", "Cookie", "sid="+tok), http.StatusOK)
	res := r.do(t, http.MethodPost, "/auth/refresh", "", "X-Session-Id", tok)
	wantStatus(t, res, http.StatusOK)
	tok2 := decode[loginResponse](t, res).SessionID
	wantStatus(t, r.do(t, http.MethodPost, "/auth/logout", "", "X-Session-Id", tok2), http.StatusOK)
	wantStatus(t, r.profile(t, tok2), http.StatusUnauthorized)
	if err := r.stop(); err != nil {
		t.Fatalf("run got %v, want nil", err)
	}

	lines := r.logs.Lines()
	if len(lines) < 3 {
		t.Fatalf("got %d log lines, want at least start, listening and stop:\n%s", len(lines), r.logs)
	}
	for i, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("line %d is not JSON: %v: %s", i, err, line)
			continue
		}
		if rec["instance"] != "logs" {
			t.Errorf("line %d: instance got %v, want %q: %s", i, rec["instance"], "logs", line)
		}
		for _, key := range []string{"time", "level", "msg"} {
			if _, ok := rec[key]; !ok {
				t.Errorf("line %d: no %q: %s", i, key, line)
			}
		}
		for _, leak := range []string{secret, tok, tok2} {
			if strings.Contains(line, leak) {
				t.Errorf("line %d contains a secret: %s", i, line)
			}
		}
	}
}

// TestLogCompleteAfterShutdown checks that the queued log loses nothing on
// a graceful shutdown: every request has its access log line, in order,
// and the shutdown's own lines come last.
func TestLogCompleteAfterShutdown(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	r := startReplica(t, baseEnv(rds.Addr(), "complete").with("LOG_LEVEL", "info"))
	r.register(t, "complete", pw)
	tok := r.login(t, "complete", pw)
	const n = 200
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "complete-" + strconv.Itoa(i)
		wantStatus(t, r.do(t, http.MethodGet, "/profile", "", "X-Session-Id", tok, "X-Request-Id", ids[i]), http.StatusOK)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("run got %v, want nil", err)
	}

	var got []string
	var last string
	for _, line := range r.logs.Lines() {
		var rec struct {
			Msg       string `json:"msg"`
			RequestID string `json:"request_id"`
			Route     string `json:"route"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line is not JSON: %v: %s", err, line)
		}
		if rec.Msg == "request" && rec.Route == "/profile" {
			got = append(got, rec.RequestID)
		}
		last = rec.Msg
	}
	if !slices.Equal(got, ids) {
		t.Errorf("access log of /profile: got %d lines %v, want the %d requests in order", len(got), got, n)
	}
	if last != "stopped" {
		t.Errorf("last log line: got %q, want %q", last, "stopped")
	}
}
