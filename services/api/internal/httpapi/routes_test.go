package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"redis-session-app/services/api/internal/httpapi"
	"redis-session-app/services/api/internal/session"
)

func TestNotFound(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/"},
		{http.MethodGet, "/nope"},
		{http.MethodGet, "/profile/"},
		{http.MethodGet, "/PROFILE"},
		{http.MethodPost, "/auth/login/"},
		{http.MethodGet, "/auth/sessions/"},
		{http.MethodDelete, "/auth/sessions/a/b"},
		{http.MethodGet, "//profile"},
		{http.MethodGet, "/healthz/"},
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			rec := h.do(newRequest(tc.method, tc.path, ""))
			checkResponse(t, rec, http.StatusNotFound, `{"error":"Not found"}`)
			checkHeader(t, rec, "Location", "")
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		method, path string
		wantAllow    []string
	}{
		{http.MethodGet, "/auth/login", []string{"POST"}},
		{http.MethodPut, "/auth/register", []string{"POST"}},
		{http.MethodPost, "/profile", []string{"GET"}},
		{http.MethodHead, "/profile", []string{"GET"}},
		{http.MethodDelete, "/auth/sessions", []string{"GET"}},
		{http.MethodGet, "/auth/sessions/abc", []string{"DELETE"}},
		{http.MethodPost, "/healthz", []string{"GET"}},
		{http.MethodDelete, "/metrics", []string{"GET"}},
		{"PURGE", "/auth/logout", []string{"POST"}},
	}
	for _, tc := range tests {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			rec := h.do(newRequest(tc.method, tc.path, ""))
			checkResponse(t, rec, http.StatusMethodNotAllowed, `{"error":"Method not allowed"}`)
			got := strings.Split(rec.Header().Get("Allow"), ", ")
			slices.Sort(got)
			if !slices.Equal(got, tc.wantAllow) {
				t.Errorf("Allow: got %q, want %q", got, tc.wantAllow)
			}
		})
	}
}

func TestPanicIs500WithoutDetail(t *testing.T) {
	h := newHarness(t)
	u := h.addUser(t, "alice", "correct horse")
	tok := h.addSession(u, "ua").Token
	h.store.panicOnLookup = true

	rec := h.do(authed(newRequest(http.MethodGet, "/profile", ""), tok))
	checkResponse(t, rec, http.StatusInternalServerError, `{"error":"Internal error"}`)
	logs := h.logs.String()
	if !strings.Contains(logs, "lookup exploded") || !strings.Contains(logs, "goroutine") {
		t.Errorf("logs: got %s, want the panic and its stack", logs)
	}
	if strings.Contains(logs, tok) {
		t.Errorf("logs hold the token")
	}
	// The server goes on serving.
	h.store.panicOnLookup = false
	checkResponse(t, h.do(authed(newRequest(http.MethodGet, "/profile", ""), tok)), http.StatusOK, "")
}

func TestHealthz(t *testing.T) {
	h := newHarness(t)
	h.draining = true
	h.ready = errors.New("redis down")
	rec := h.do(newRequest(http.MethodGet, "/healthz", ""))
	checkResponse(t, rec, http.StatusOK, `{"status":"ok"}`)
}

func TestReadyz(t *testing.T) {
	tests := []struct {
		name       string
		draining   bool
		ready      error
		wantStatus int
		wantBody   string
	}{
		{"OK", false, nil, 200, `{"status":"ready"}`},
		{"ErrDraining", true, nil, 503, `{"error":"Not ready"}`},
		{"ErrStoreDown", false, errRedisDown, 503, `{"error":"Not ready"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.draining, h.ready = tc.draining, tc.ready
			checkResponse(t, h.do(newRequest(http.MethodGet, "/readyz", "")), tc.wantStatus, tc.wantBody)
		})
	}
}

func TestReadyzBoundsThePing(t *testing.T) {
	var deadline time.Duration
	h := newHarness(t, func(d *httpapi.Deps) {
		d.Ready = func(ctx context.Context) error {
			dl, ok := ctx.Deadline()
			if !ok {
				return errors.New("no deadline")
			}
			deadline = time.Until(dl)
			<-ctx.Done() // a hung Redis
			return ctx.Err()
		}
	})
	start := time.Now()
	rec := h.do(newRequest(http.MethodGet, "/readyz", ""))
	checkResponse(t, rec, http.StatusServiceUnavailable, `{"error":"Not ready"}`)
	if deadline <= 0 || deadline > 500*time.Millisecond {
		t.Errorf("ping deadline: got %v, want within 500ms", deadline)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("readyz took %v, want it bounded", took)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	h := newHarness(t)
	rec := h.do(newRequest(http.MethodGet, "/metrics", ""))
	if rec.Code != http.StatusOK {
		t.Fatalf("status: got %v, want 200", rec.Code)
	}
	checkHeader(t, rec, "X-Instance", testInstance)
	body := rec.Body.String()
	for _, want := range []string{`api_build_info{revision="abc",version="test"} 1`, `api_logins_total{result="busy"} 0`, "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics: want %q in\n%s", want, body)
		}
	}
}

func TestOpenAPIDocument(t *testing.T) {
	h := newHarness(t)
	rec := h.do(newRequest(http.MethodGet, "/openapi.yaml", ""))
	if rec.Code != http.StatusOK {
		t.Fatalf("status: got %v, want 200", rec.Code)
	}
	want, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.Body.String(); got != string(want) {
		t.Errorf("got a body of %d bytes, want openapi.yaml (%d bytes)", len(got), len(want))
	}
	checkHeader(t, rec, "Content-Type", "application/yaml")
	checkHeader(t, rec, "X-Instance", testInstance)
}

// TestRoutesMatchOpenAPI checks that the router serves exactly the
// operations the OpenAPI document describes. The document is YAML; the
// paths and their operations are read from its indentation, which is all
// this check needs and spares the module a YAML dependency.
func TestRoutesMatchOpenAPI(t *testing.T) {
	f, err := os.Open("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pathLine := regexp.MustCompile(`^  (/\S*):\s*$`)
	opLine := regexp.MustCompile(`^    (get|put|post|delete|options|head|patch|trace):\s*$`)
	var doc []string
	inPaths, current := false, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "paths:":
			inPaths = true
		case inPaths && line != "" && line[0] != ' ' && line[0] != '#':
			inPaths = false
		case inPaths:
			if m := pathLine.FindStringSubmatch(line); m != nil {
				current = m[1]
			} else if m := opLine.FindStringSubmatch(line); m != nil && current != "" {
				doc = append(doc, strings.ToUpper(m[1])+" "+current)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}

	h := newHarness(t)
	engine, ok := h.router.(*gin.Engine)
	if !ok {
		t.Fatalf("router is %T, want *gin.Engine", h.router)
	}
	param := regexp.MustCompile(`:(\w+)`)
	var served []string
	for _, r := range engine.Routes() {
		served = append(served, r.Method+" "+param.ReplaceAllString(r.Path, "{$1}"))
	}
	slices.Sort(doc)
	slices.Sort(served)
	if len(doc) == 0 {
		t.Fatal("no operations found in openapi.yaml")
	}
	if !slices.Equal(served, doc) {
		t.Errorf("routes: got %q, want %q (openapi.yaml)", served, doc)
	}
}

func TestXInstanceOnEveryResponse(t *testing.T) {
	h := newHarness(t)
	h.limiter.decision = &session.RateDecision{RetryAfter: time.Second}
	big := strings.Repeat("x", 70000)
	for _, req := range []*http.Request{
		newRequest(http.MethodGet, "/healthz", ""),
		newRequest(http.MethodGet, "/readyz", ""),
		newRequest(http.MethodGet, "/metrics", ""),
		newRequest(http.MethodGet, "/openapi.yaml", ""),
		newRequest(http.MethodGet, "/nope", ""),
		newRequest(http.MethodGet, "/auth/login", ""),
		newRequest(http.MethodPost, "/auth/login", big),
		newRequest(http.MethodPost, "/auth/login", "{"),
		newRequest(http.MethodPost, "/auth/register", `{"username":"alice","password":"correct horse"}`),
		newRequest(http.MethodGet, "/profile", ""),
	} {
		rec := h.do(req)
		if got := rec.Header().Get("X-Instance"); got != testInstance {
			t.Errorf("%s %s (%d): X-Instance got %q, want %q", req.Method, req.URL.Path, rec.Code, got, testInstance)
		}
	}
}

func TestRequestMetricsByRouteTemplate(t *testing.T) {
	h := newHarness(t)
	u := h.addUser(t, "alice", "correct horse")
	tok := h.addSession(u, "ua").Token
	h.do(authed(newRequest(http.MethodGet, "/profile", ""), tok))
	h.do(authed(newRequest(http.MethodGet, "/profile", ""), tok))
	h.do(newRequest(http.MethodGet, "/profile", ""))
	h.do(authed(newRequest(http.MethodDelete, "/auth/sessions/one", ""), tok))
	h.do(authed(newRequest(http.MethodDelete, "/auth/sessions/two", ""), tok))
	h.do(newRequest(http.MethodGet, "/no/such/"+tok, ""))
	h.do(newRequest("BREW", "/coffee", ""))
	h.do(newRequest(http.MethodPost, "/profile", ""))
	h.do(newRequest(http.MethodGet, "/healthz", ""))
	h.do(newRequest(http.MethodGet, "/readyz", ""))
	h.do(newRequest(http.MethodGet, "/metrics", ""))

	tests := []struct {
		route, method, code string
		want                float64
	}{
		{"/profile", "GET", "200", 2},
		{"/profile", "GET", "401", 1},
		{"/auth/sessions/:id", "DELETE", "404", 2},
		{"unmatched", "GET", "404", 1},
		{"unmatched", "OTHER", "404", 1},
		{"unmatched", "POST", "405", 1},
	}
	for _, tc := range tests {
		if got := testutil.ToFloat64(h.metrics.HTTPRequests.WithLabelValues(tc.route, tc.method, tc.code)); got != tc.want {
			t.Errorf("requests{%s,%s,%s}: got %v, want %v", tc.route, tc.method, tc.code, got, tc.want)
		}
	}
	// Only the series above: no raw paths, no probes, no /metrics.
	if got, want := testutil.CollectAndCount(h.metrics.HTTPRequests), len(tests); got != want {
		t.Errorf("request series: got %v, want %v", got, want)
	}
	// One per route and method: /profile GET, /auth/sessions/:id DELETE
	// and unmatched GET, OTHER and POST.
	if got, want := testutil.CollectAndCount(h.metrics.HTTPDuration), 5; got != want {
		t.Errorf("duration series: got %v, want %v", got, want)
	}
}

func TestRequestID(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name, sent string
		echoed     bool
	}{
		{"Sane", "abc-123_X.y", true},
		{"UUID", "0b6a4f4e-2d0a-4f6c-9d55-3b9a6d1b7c1e", true},
		{"Absent", "", false},
		{"TooLong", strings.Repeat("a", 129), false},
		{"BadCharacters", "abc def", false},
		{"Injection", "x\",\"status\":200", false},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := newRequest(http.MethodGet, "/healthz", "")
			if tc.sent != "" {
				req.Header.Set("X-Request-Id", tc.sent)
			}
			got := h.do(req).Header().Get("X-Request-Id")
			if tc.echoed {
				if got != tc.sent {
					t.Errorf("got %q, want %q", got, tc.sent)
				}
				return
			}
			if got == "" || got == tc.sent || len(got) > 128 || seen[got] {
				t.Errorf("got %q, want a new unique id", got)
			}
			seen[got] = true
		})
	}
}

func TestAccessLog(t *testing.T) {
	h := newHarness(t)
	u := h.addUser(t, "alice", "correct horse")
	iss := h.addSession(u, "ua")
	req := authed(newRequest(http.MethodDelete, "/auth/sessions/nope", ""), iss.Token)
	req.Header.Set("X-Request-Id", "req-42")
	h.do(req)

	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		if m["msg"] == "request" {
			line = m
		}
	}
	if line == nil {
		t.Fatalf("no access log line in %s", h.logs)
	}
	want := map[string]any{
		"level":      "INFO",
		"request_id": "req-42",
		"method":     "DELETE",
		"route":      "/auth/sessions/:id",
		"status":     float64(404),
		"client_ip":  "192.0.2.10",
		"session":    iss.Session.ID,
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s: got %v, want %v", k, line[k], v)
		}
	}
	if _, ok := line["duration_ms"].(float64); !ok {
		t.Errorf("duration_ms: got %v, want a number", line["duration_ms"])
	}
	if strings.Contains(h.logs.String(), iss.Token) {
		t.Errorf("logs hold the token:\n%s", h.logs)
	}
}

// TestUnmatchedPathNotLogged: a token a client puts in a path that matches
// no route never reaches the log, which names such requests "unmatched".
func TestUnmatchedPathNotLogged(t *testing.T) {
	tok := mustRandom(32)
	tests := []struct {
		name, method, target string
		wantStatus           int
	}{
		{"NotFound", http.MethodGet, "/profile/" + tok, http.StatusNotFound},
		{"NotFoundDeep", http.MethodPost, "/auth/refresh/" + tok + "/x", http.StatusNotFound},
		{"NotFoundQuery", http.MethodGet, "/nope?sid=" + tok, http.StatusNotFound},
		{"NotFoundEscaped", http.MethodGet, "/profile/%2F" + tok, http.StatusNotFound},
		{"MethodNotAllowed", http.MethodGet, "/auth/sessions/" + tok, http.StatusMethodNotAllowed},
		{"MethodNotAllowedUnknownMethod", "BREW", "/auth/sessions/" + tok, http.StatusMethodNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			rec := h.do(newRequest(tc.method, tc.target, ""))
			if rec.Code != tc.wantStatus {
				t.Fatalf("status: got %v, want %v", rec.Code, tc.wantStatus)
			}
			logs := h.logs.String()
			if strings.Contains(logs, tok) {
				t.Errorf("logs hold the token:\n%s", logs)
			}
			var line map[string]any
			if err := json.Unmarshal([]byte(strings.TrimSpace(logs)), &line); err != nil {
				t.Fatalf("want one JSON access log line, got %q: %v", logs, err)
			}
			if got, want := line["route"], "unmatched"; got != want {
				t.Errorf("route: got %v, want %v", got, want)
			}
		})
	}
}

func TestProbesLoggedAtDebug(t *testing.T) {
	h := newHarness(t)
	h.do(newRequest(http.MethodGet, "/healthz", ""))
	if !strings.Contains(h.logs.String(), `"level":"DEBUG"`) || strings.Contains(h.logs.String(), `"level":"INFO"`) {
		t.Errorf("got logs %s, want the probe at debug only", h.logs)
	}
}

func TestClientIPThroughTrustedProxies(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name   string
		remote string
		xff    []string
		realIP string
		want   string
	}{
		{"UntrustedPeerIgnoresXFF", "198.51.100.7:1234", []string{"203.0.113.9"}, "", "198.51.100.7"},
		{"TrustedPeerTakesXFF", "10.1.2.3:1234", []string{"203.0.113.9"}, "", "203.0.113.9"},
		{"RightmostUntrusted", "10.1.2.3:1234", []string{"6.6.6.6, 203.0.113.9, 10.9.9.9"}, "", "203.0.113.9"},
		{"SeveralHeaderLines", "10.1.2.3:1234", []string{"6.6.6.6", "203.0.113.9", "10.9.9.9"}, "", "203.0.113.9"},
		{"NoXFFUsesPeer", "10.1.2.3:1234", nil, "", "10.1.2.3"},
		{"XRealIPNeverBelieved", "10.1.2.3:1234", nil, "203.0.113.9", "10.1.2.3"},
		{"MappedPeer", "[::ffff:198.51.100.7]:1234", nil, "", "198.51.100.7"},
		{"IPv6Proxy", "[fd00::1]:1234", []string{"2001:db8::5"}, "", "2001:db8::5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(d *httpapi.Deps) { d.TrustedProxies = trusted })
			req := newRequest(http.MethodPost, "/auth/register", `{"username":"alice","password":"correct horse"}`)
			req.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			if tc.realIP != "" {
				req.Header.Set("X-Real-IP", tc.realIP)
				req.Header.Set("Forwarded", "for="+tc.realIP)
			}
			h.do(req)
			if got, want := h.limiter.attempts, []string{"register|" + tc.want}; !slices.Equal(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}
