package httpapi_test

import (
	"encoding/json/jsontext"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"redis-session-app/services/api/internal/httpapi"
)

// FuzzTokenCarriers sends arbitrary carrier values: whatever they hold, the
// answer is a 200 or a 401, never a 5xx or a panic.
func FuzzTokenCarriers(f *testing.F) {
	h := newHarness(f, discardLogs)
	u := h.addUser(f, "alice", "correct horse")
	valid := h.addSession(u, "ua").Token

	f.Add(valid, "", "")
	f.Add("", "Bearer "+valid, "")
	f.Add("", "", "sid="+valid)
	f.Add("", "bearer", "sid=")
	f.Add("x", "Basic abc", "sid=\"\"; sid="+valid)
	f.Add("", "Bearer  \t", "sid=%00; =;;")
	f.Add(strings.Repeat("A", 200), "", "")
	f.Fuzz(func(t *testing.T, xSessionID, authorization, cookie string) {
		req := httptest.NewRequest(http.MethodGet, "/profile", nil)
		req.RemoteAddr = "192.0.2.10:1"
		if xSessionID != "" {
			req.Header["X-Session-Id"] = []string{xSessionID}
		}
		if authorization != "" {
			req.Header["Authorization"] = []string{authorization}
		}
		if cookie != "" {
			req.Header["Cookie"] = []string{cookie}
		}
		rec := h.do(req)
		if rec.Code != http.StatusOK && rec.Code != http.StatusUnauthorized {
			t.Fatalf("got status %v (%s), want 200 or 401", rec.Code, rec.Body)
		}
		if rec.Header().Get("X-Instance") != testInstance {
			t.Errorf("X-Instance missing")
		}
	})
}

// FuzzDecodeCredentials sends arbitrary bodies to login and register: the
// answer is never a 5xx and never echoes the password, and a body that got
// past decoding was one I-JSON object (RFC 7493: valid UTF-8, no lone
// surrogate escape, no member name twice in an object).
func FuzzDecodeCredentials(f *testing.F) {
	h := newHarness(f, discardLogs)
	h.addUser(f, "alice", "correct horse")

	f.Add(`{"username":"alice","password":"correct horse"}`, "application/json")
	f.Add(`{"username":"alice","password":"wrong horse!"}`, "")
	f.Add(`{"username":"bob","password":"correct horse"}`, "application/json; charset=utf-8")
	f.Add(`{"username":1,"password":[]}`, "application/json")
	f.Add(`{"username":"a\u0000b","password":"\ud800xxxxxxxx"}`, "application/json")
	f.Add(`[]`, "application/json")
	f.Add(`{} {}`, "text/json")
	f.Add(`{"username":"alice","password":"correct horse"`, "application/json;;")
	f.Add(`{"Username":"alice","password":"correct horse","password":"x"}`, "application/json")
	f.Add("{\"username\":\"alice\",\"password\":\"correct\xffhorse\\udc00\\ud83d\"}", "application/json")
	f.Add(`{"username":"alice","password":"correct horse","x":{"y":1,"y":2}}`, "application/json")
	f.Add(`{"username":"alice","password":"correct horse","note":"\ud800"}`, "")
	f.Fuzz(func(t *testing.T, body, contentType string) {
		for _, path := range []string{"/auth/login", "/auth/register"} {
			req := httptest.NewRequest(http.MethodPost, path, nil)
			req.Body = io.NopCloser(strings.NewReader(body))
			req.ContentLength = int64(len(body))
			req.RemoteAddr = "192.0.2.10:1"
			if contentType != "" {
				req.Header["Content-Type"] = []string{contentType}
			}
			rec := h.do(req)
			if rec.Code >= 500 {
				t.Fatalf("%s: got status %v (%s), want no 5xx", path, rec.Code, rec.Body)
			}
			if rec.Code == http.StatusBadRequest && strings.Contains(rec.Body.String(), "correct horse") {
				t.Errorf("%s: body %s echoes the password", path, rec.Body)
			}
			decoded := rec.Code != http.StatusBadRequest && rec.Code != http.StatusUnsupportedMediaType && rec.Code != http.StatusRequestEntityTooLarge
			if decoded && !jsontext.Value(body).IsValid() {
				t.Errorf("%s: got %v for a body that is not I-JSON, want 400", path, rec.Code)
			}
		}
	})
}

// BenchmarkProfile measures the hot path through the whole router with an
// in-memory store: what the service itself adds to a Redis round trip.
func BenchmarkProfile(b *testing.B) {
	h := newHarness(b, discardLogs)
	u := h.addUser(b, "alice", "correct horse")
	tok := h.addSession(u, "ua").Token
	req := httptest.NewRequest(http.MethodGet, "/profile", nil)
	req.RemoteAddr = "192.0.2.10:1"
	req.Header.Set("X-Session-Id", tok)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.router.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status: got %v, want 200", rec.Code)
		}
	}
}

// discardLogs writes the logs through a JSON handler at info level, as in
// production, into io.Discard: fuzzing and benchmarks would otherwise
// collect every line in memory.
func discardLogs(d *httpapi.Deps) {
	d.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
}
