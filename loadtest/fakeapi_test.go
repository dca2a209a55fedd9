package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// fakeAPI stands in for the session API in tests of the tool itself: it
// registers anyone, logs anyone in with a fresh token, and answers
// /profile, /auth/sessions, /auth/refresh and /auth/logout for a token it
// gave. before, when set, runs first for every request of the timed
// phase's paths: it may slow the answer down.
func fakeAPI(t *testing.T, before func(r *http.Request)) *httptest.Server {
	t.Helper()
	var (
		mu     sync.Mutex
		n      int
		tokens = map[string]string{} // token → username
	)
	login := func(name string) string {
		mu.Lock()
		defer mu.Unlock()
		n++
		tok := fmt.Sprintf("tok_%028d", n)
		tokens[tok] = name
		return tok
	}
	holder := func(r *http.Request) (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		name, ok := tokens[r.Header.Get("X-Session-Id")]
		return name, ok
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/auth/register" {
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, `{}`)
			return
		}
		if before != nil {
			before(r)
		}
		if r.URL.Path == "/auth/login" {
			var creds struct{ Username string }
			if err := json.NewDecoder(r.Body).Decode(&creds); err != nil {
				http.Error(w, `{"error":"bad body"}`, http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, `{"sessionId":%q}`, login(creds.Username))
			return
		}
		name, ok := holder(r)
		if !ok {
			http.Error(w, `{"error":"Invalid session"}`, http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/profile":
			fmt.Fprintf(w, `{"username":%q}`, name)
		case "/auth/sessions":
			fmt.Fprint(w, `{"sessions":[{"id":"a","current":true}]}`)
		case "/auth/refresh":
			mu.Lock()
			delete(tokens, r.Header.Get("X-Session-Id"))
			mu.Unlock()
			fmt.Fprintf(w, `{"sessionId":%q}`, login(name))
		case "/auth/logout":
			mu.Lock()
			delete(tokens, r.Header.Get("X-Session-Id"))
			mu.Unlock()
			fmt.Fprint(w, `{"message":"Logged out"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}
