package httpapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestDecodeErrors(t *testing.T) {
	const pw = "s3cret-Password"
	big := `{"username":"alice","password":"` + pw + `","pad":"` + strings.Repeat("x", 65536) + `"}`
	exact := `{"username":"alice","password":"` + pw + `","pad":"`
	exact += strings.Repeat("x", 65536-len(exact)-2) + `"}`

	tests := []struct {
		name        string
		contentType string // "-" for none
		body        string
		chunked     bool
		wantStatus  int
		wantError   string // empty when the body decodes
	}{
		{"OK", "application/json", `{"username":"alice","password":"` + pw + `"}`, false, 0, ""},
		{"OKNoContentType", "-", `{"username":"alice","password":"` + pw + `"}`, false, 0, ""},
		{"OKCharset", "application/json; charset=utf-8", `{"username":"alice","password":"` + pw + `"}`, false, 0, ""},
		{"OKUpperCaseType", "Application/JSON", `{"username":"alice","password":"` + pw + `"}`, false, 0, ""},
		{"OKUnknownFieldsIgnored", "application/json", `{"username":"alice","password":"` + pw + `","remember":true,"x":{"y":[1]}}`, false, 0, ""},
		{"OKWhitespaceAround", "application/json", " \n\t" + `{"username":"alice","password":"` + pw + `"}` + "\r\n ", false, 0, ""},
		{"OKExactlyTheLimit", "application/json", exact, false, 0, ""},
		{"OKExactlyTheLimitChunked", "application/json", exact, true, 0, ""},
		{"ErrTextPlain", "text/plain", `{"username":"alice","password":"` + pw + `"}`, false, 415, "Content-Type must be application/json"},
		{"ErrForm", "application/x-www-form-urlencoded", "username=alice&password=" + pw, false, 415, "Content-Type must be application/json"},
		{"ErrJSONLookalike", "application/jsonx", `{}`, false, 415, "Content-Type must be application/json"},
		{"ErrUnparsableContentType", "/", `{}`, false, 415, "Content-Type must be application/json"},
		{"ErrTooLarge", "application/json", big, false, 413, "Request body too large"},
		{"ErrTooLargeChunked", "application/json", big, true, 413, "Request body too large"},
		{"ErrTooLargeByOneChunked", "application/json", exact + " ", true, 413, "Request body too large"},
		{"ErrEmpty", "application/json", "", false, 400, "request body is empty; it must be a JSON object"},
		{"ErrArray", "application/json", `[{"username":"alice"}]`, false, 400, "request body must be a JSON object"},
		{"ErrString", "application/json", `"alice"`, false, 400, "request body must be a JSON object"},
		{"ErrNull", "application/json", `null`, false, 400, "request body must be a JSON object"},
		{"ErrSyntax", "application/json", `{"username":"alice","password":"` + pw + `",}`, false, 400, "request body is not valid JSON (at byte 50)"},
		{"ErrTruncated", "application/json", `{"username":"alice","password":"` + pw, false, 400, "request body is not valid JSON (it ends early)"},
		{"ErrTrailingObject", "application/json", `{"username":"alice","password":"` + pw + `"}{}`, false, 400, "request body must hold a single JSON object; found data after it"},
		{"ErrTrailingGarbage", "application/json", `{"username":"alice","password":"` + pw + `"} x`, false, 400, "request body must hold a single JSON object; found data after it"},
		{"ErrUsernameNumber", "application/json", `{"username":42,"password":"` + pw + `"}`, false, 400, "username must be a string"},
		{"ErrPasswordObject", "application/json", `{"username":"alice","password":{"p":"` + pw + `"}}`, false, 400, "password must be a string"},
		{"ErrUsernameMissing", "application/json", `{"password":"` + pw + `"}`, false, 400, "username is required"},
		{"ErrUsernameNull", "application/json", `{"username":null,"password":"` + pw + `"}`, false, 400, "username is required"},
		{"ErrPasswordMissing", "application/json", `{"username":"alice"}`, false, 400, "password is required"},
		{"ErrBothMissing", "application/json", `{}`, false, 400, "username is required"},
	}
	for _, path := range []string{"/auth/login", "/auth/register"} {
		for _, tc := range tests {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				h := newHarness(t)
				h.addUser(t, "alice", pw)
				req := newRequest(http.MethodPost, path, "")
				req.Body = io.NopCloser(strings.NewReader(tc.body))
				req.ContentLength = int64(len(tc.body))
				if tc.chunked {
					req.ContentLength = -1
				}
				if tc.contentType != "-" {
					req.Header.Set("Content-Type", tc.contentType)
				}
				rec := h.do(req)
				if tc.wantError == "" {
					want := http.StatusOK
					if path == "/auth/register" {
						want = http.StatusConflict // alice exists: it got past decoding
					}
					checkResponse(t, rec, want, "")
					return
				}
				checkResponse(t, rec, tc.wantStatus, `{"error":"`+tc.wantError+`"}`)
				if strings.Contains(rec.Body.String(), pw) {
					t.Errorf("body %q echoes the password", rec.Body)
				}
				if got := len(h.limiter.attempts); got != 0 {
					t.Errorf("limiter attempts: got %v, want 0 for a malformed body", got)
				}
			})
		}
	}
}

func TestPasswordNeverLogged(t *testing.T) {
	const pw = "s3cret-Password"
	h := newHarness(t)
	h.addUser(t, "alice", pw)
	for _, body := range []string{
		`{"username":"alice","password":"` + pw + `"}`,
		`{"username":"alice","password":"` + pw + `x"}`,
		`{"username":"alice","password":"` + pw + `"`,
	} {
		h.do(newRequest(http.MethodPost, "/auth/login", body))
		h.do(newRequest(http.MethodPost, "/auth/register", body))
	}
	if strings.Contains(h.logs.String(), pw) {
		t.Errorf("logs hold the password:\n%s", h.logs)
	}
}
