package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

// checkResponse checks the status and, when wantBody is not empty, that the
// body is the same JSON as wantBody, and that the response is JSON and
// names the replica.
func checkResponse(t *testing.T, rec *httptest.ResponseRecorder, wantStatus int, wantBody string) {
	t.Helper()
	if got := rec.Code; got != wantStatus {
		t.Errorf("status: got %v, want %v (body %s)", got, wantStatus, rec.Body)
	}
	if got := rec.Header().Get("X-Instance"); got != testInstance {
		t.Errorf("X-Instance: got %q, want %q", got, testInstance)
	}
	if wantBody == "" {
		return
	}
	if got, want := rec.Header().Get("Content-Type"), "application/json; charset=utf-8"; got != want {
		t.Errorf("Content-Type: got %q, want %q", got, want)
	}
	var got, want any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("body %q is not JSON: %v", rec.Body, err)
	}
	if err := json.Unmarshal([]byte(wantBody), &want); err != nil {
		t.Fatalf("want %q is not JSON: %v", wantBody, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("body: got %s, want %s", rec.Body, wantBody)
	}
}

// decodeBody decodes a JSON response body into v.
func decodeBody(t testing.TB, rec *httptest.ResponseRecorder, v any) {
	t.Helper()
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("decoding body %q: %v", rec.Body, err)
	}
}

// cookieOf returns the sid cookie a response sets.
func cookieOf(t *testing.T, rec *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range rec.Result().Cookies() {
		if c.Name == "sid" {
			return c
		}
	}
	t.Fatalf("no sid cookie in %q", rec.Header().Values("Set-Cookie"))
	return nil
}

func checkHeader(t *testing.T, rec *httptest.ResponseRecorder, name, want string) {
	t.Helper()
	if got := rec.Header().Get(name); got != want {
		t.Errorf("%s: got %q, want %q", name, got, want)
	}
}
