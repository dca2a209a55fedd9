package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"redis-session-app/services/api/internal/session"
)

// contract is the OpenAPI document of the service, a router over it, and
// the responses a test has checked against it.
type contract struct {
	t      *testing.T
	doc    *openapi3.T
	router routers.Router
	base   string // the first server of the document, where requests are matched
	// seen holds "operationId status" for operations and
	// "#/components/responses/Name" for responses tied to no operation.
	seen map[string]bool
}

func loadContract(t *testing.T) *contract {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("openapi.yaml")
	if err != nil {
		t.Fatalf("loading openapi.yaml: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("routing openapi.yaml: %v", err)
	}
	// kin-openapi knows no decoder for OpenMetrics, which is text; its
	// registry of decoders is the package's own.
	openapi3filter.RegisterBodyDecoder("application/openmetrics-text", openapi3filter.PlainBodyDecoder)
	t.Cleanup(func() { openapi3filter.UnregisterBodyDecoder("application/openmetrics-text") })
	return &contract{t: t, doc: doc, router: router, base: doc.Servers[0].URL, seen: map[string]bool{}}
}

// call is one request, kept as its parts so that the server and the
// validator each get a request of their own.
type call struct {
	method, path, body string
	header             http.Header
	remoteAddr         string
	// breaksOff makes the body fail after its bytes, as a malformed
	// chunk or a connection closed mid-body does.
	breaksOff bool
}

// req makes a call; kv are header names and values. A body goes with
// Content-Type application/json unless kv sets a Content-Type, "" for none.
func req(method, path, body string, kv ...string) call {
	c := call{method: method, path: path, body: body, header: http.Header{}}
	if body != "" {
		c.header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			c.header.Del(kv[i])
			continue
		}
		c.header.Set(kv[i], kv[i+1])
	}
	return c
}

func (c call) from(addr string) call {
	c.remoteAddr = addr
	return c
}

func (c call) brokenOff() call {
	c.breaksOff = true
	return c
}

// request builds the call against base, "" for a path-only target as
// the server sees it.
func (c call) request(base string) *http.Request {
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	if c.breaksOff {
		// Of unknown length, like a chunked body.
		body = io.MultiReader(strings.NewReader(c.body), iotest.ErrReader(io.ErrUnexpectedEOF))
	}
	r := httptest.NewRequest(c.method, base+c.path, body)
	r.Header = c.header.Clone()
	r.RemoteAddr = "192.0.2.10:54321"
	if c.remoteAddr != "" {
		r.RemoteAddr = c.remoteAddr
	}
	return r
}

// check sends c to h, wants status, and validates the response, status,
// headers and body, against the document: against its operation when the
// document has one for the request, else against the response the server
// gives to paths and methods the document does not list. It validates
// the request too: a request the document allows must pass, and one that
// breaks it (docInvalid) must fail and must be refused with a 4xx.
func (ct *contract) check(t *testing.T, h *harness, c call, status int, docInvalid bool) *httptest.ResponseRecorder {
	t.Helper()
	rec := h.do(c.request(""))
	if rec.Code != status {
		t.Fatalf("%s %s: got %v %s, want %v", c.method, c.path, rec.Code, rec.Body, status)
	}
	vreq := c.request(ct.base)
	ctx := context.Background()
	route, params, err := ct.router.FindRoute(vreq)
	if err == nil && !templateMatches(route.Path, c.path) {
		// The router forgives a trailing slash; the server does not.
		err = routers.ErrPathNotFound
	}
	if err != nil {
		if !docInvalid && rec.Code != http.StatusForbidden {
			// Only a cross-origin refusal may answer a request
			// outside the document without calling it invalid.
			t.Errorf("%s %s: no operation in the document (%v)", c.method, c.path, err)
		}
		ct.checkUnmatched(t, c, vreq, rec)
		return rec
	}

	in := &openapi3filter.RequestValidationInput{
		Request:    vreq,
		PathParams: params,
		Route:      route,
		Options:    &openapi3filter.Options{AuthenticationFunc: carrierPresent},
	}
	if rb := route.Operation.RequestBody; rb != nil && vreq.Header.Get("Content-Type") == "" && c.body != "" {
		// What the server does with no Content-Type, as the
		// document says.
		if ct, ok := rb.Value.Extensions["x-absent-content-type"].(string); ok {
			vreq.Header.Set("Content-Type", ct)
		}
	}
	reqErr := openapi3filter.ValidateRequest(ctx, in)
	switch {
	case docInvalid && reqErr == nil:
		t.Errorf("%s %s: the document allows the request, want it to refuse it", c.method, c.path)
	case !docInvalid && reqErr != nil:
		t.Errorf("%s %s: the document refuses the request: %v", c.method, c.path, reqErr)
	case docInvalid && (rec.Code < 400 || rec.Code > 499):
		t.Errorf("%s %s: a request the document refuses got %v, want a 4xx", c.method, c.path, rec.Code)
	}

	if err := validateResponse(ctx, in, rec); err != nil {
		t.Errorf("%s %s: response %v does not match %s: %v", c.method, c.path, rec.Code, route.Operation.OperationID, err)
	}
	ct.seen[route.Operation.OperationID+" "+strconv.Itoa(rec.Code)] = true
	return rec
}

// validateResponse checks the recorded response against what the document
// says the request in may be answered with, its status included.
func validateResponse(ctx context.Context, in *openapi3filter.RequestValidationInput, rec *httptest.ResponseRecorder) error {
	return openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 rec.Code,
		Header:                 rec.Header(),
		Body:                   io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	})
}

// templateMatches reports whether path is exactly one of template's paths,
// a parameter standing for one segment.
func templateMatches(template, path string) bool {
	pattern := "^" + regexp.MustCompile(`\\\{[^}]+\}`).ReplaceAllString(regexp.QuoteMeta(template), `[^/]+`) + "$"
	return regexp.MustCompile(pattern).MatchString(path)
}

// unmatched are the responses of the document tied to no operation, by the
// status the server answers with.
var unmatched = map[int]string{
	http.StatusNotFound:         "NotFound",
	http.StatusMethodNotAllowed: "MethodNotAllowed",
	http.StatusForbidden:        "CrossOriginRefused",
}

// checkUnmatched validates the answer to a request for which the document
// has no operation against the component response of its status.
func (ct *contract) checkUnmatched(t *testing.T, c call, vreq *http.Request, rec *httptest.ResponseRecorder) {
	t.Helper()
	name, ok := unmatched[rec.Code]
	if !ok {
		t.Errorf("%s %s: got %v for a request the document has no operation for, want 404, 405 or 403", c.method, c.path, rec.Code)
		return
	}
	resp := ct.doc.Components.Responses[name]
	if resp == nil {
		t.Fatalf("openapi.yaml has no #/components/responses/%s", name)
	}
	op := &openapi3.Operation{OperationID: name, Responses: openapi3.NewResponses(openapi3.WithStatus(rec.Code, resp))}
	in := &openapi3filter.RequestValidationInput{
		Request: vreq,
		Route:   &routers.Route{Spec: ct.doc, Path: c.path, Method: c.method, Operation: op},
	}
	if err := validateResponse(context.Background(), in, rec); err != nil {
		t.Errorf("%s %s: response %v does not match #/components/responses/%s: %v", c.method, c.path, rec.Code, name, err)
	}
	ct.seen["#/components/responses/"+name] = true
}

// carrierPresent is the document's security, as the server has it: a
// scheme is satisfied when its carrier is present. Whether the token is
// valid is the server's to say (401), not the document's.
func carrierPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	present := false
	switch in.SecuritySchemeName {
	case "sessionHeader":
		present = r.Header.Get("X-Session-Id") != ""
	case "bearer":
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		present = strings.EqualFold(scheme, "Bearer") && strings.TrimSpace(tok) != ""
	case "sessionCookie":
		ck, err := r.Cookie("sid")
		present = err == nil && ck.Value != ""
	}
	if !present {
		return in.NewError(fmt.Errorf("no %s", in.SecuritySchemeName))
	}
	return nil
}

// declared lists every response the document declares: "operationId
// status" for each operation, and the component responses tied to none.
func (ct *contract) declared() []string {
	var out []string
	for _, item := range ct.doc.Paths.Map() {
		for _, op := range item.Operations() {
			for status := range op.Responses.Map() {
				out = append(out, op.OperationID+" "+status)
			}
		}
	}
	for _, name := range unmatched {
		out = append(out, "#/components/responses/"+name)
	}
	slices.Sort(out)
	return out
}

// TestContractDeclaresHeaders: ValidateResponse checks only the headers a
// response declares, so every response must declare the two every answer
// carries, as required.
func TestContractDeclaresHeaders(t *testing.T) {
	ct := loadContract(t)
	check := func(where string, resp *openapi3.Response) {
		for _, name := range []string{"X-Instance", "X-Request-Id"} {
			h := resp.Headers[name]
			if h == nil || h.Value == nil || !h.Value.Required {
				t.Errorf("%s: header %s not declared as required", where, name)
			}
		}
	}
	for path, item := range ct.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status, ref := range op.Responses.Map() {
				check(method+" "+path+" "+status, ref.Value)
			}
		}
	}
	for name, ref := range ct.doc.Components.Responses {
		check("#/components/responses/"+name, ref.Value)
	}
}

// TestContract drives the server, on a real Redis wherever Redis can give
// the answer, through every response the document declares, and checks
// each request and response against the document. It fails when the
// document declares a response no exchange produced.
func TestContract(t *testing.T) {
	ct := loadContract(t)
	const (
		alice    = `{"username":"alice","password":"correct horse"}`
		crossUA  = "Sec-Fetch-Site"
		cross    = "cross-site"
		badLogin = `{"username":"alice","password":"wrong horse"}`
	)
	big := `{"username":"dave","password":"correct horse","pad":"` + strings.Repeat("x", 70000) + `"}`

	t.Run("Redis", func(t *testing.T) {
		h, _ := newRedisHarness(t)
		ct.check(t, h, req("POST", "/auth/register", `{"username":"Alice","password":"correct horse"}`), 201, false)
		tok := login(t, h, "contract")
		for _, tc := range []struct {
			name       string
			call       call
			status     int
			docInvalid bool
		}{
			{"RegisterOK", req("POST", "/auth/register", `{"username":"bob","password":"correct horse"}`), 201, false},
			{"RegisterNoContentType", req("POST", "/auth/register", `{"username":"carl","password":"correct horse"}`, "Content-Type", ""), 201, false},
			{"RegisterMissingPassword", req("POST", "/auth/register", `{"username":"carol"}`), 400, true},
			{"RegisterBadUsername", req("POST", "/auth/register", `{"username":"a b","password":"correct horse"}`), 400, true},
			{"RegisterNotJSON", req("POST", "/auth/register", `{`), 400, true},
			{"RegisterTaken", req("POST", "/auth/register", alice), 409, false},
			// OpenAPI cannot bound a body's size: the document allows
			// it and says 413 in words.
			{"RegisterTooLarge", req("POST", "/auth/register", big), 413, false},
			{"RegisterMediaType", req("POST", "/auth/register", alice, "Content-Type", "text/plain"), 415, true},
			{"RegisterCrossOrigin", req("POST", "/auth/register", alice, crossUA, cross), 403, false},
			{"LoginOK", req("POST", "/auth/login", alice), 200, false},
			{"LoginTruncated", req("POST", "/auth/login", `{"username":"alice"`), 400, true},
			{"LoginWrongPassword", req("POST", "/auth/login", badLogin), 401, false},
			{"LoginTooLarge", req("POST", "/auth/login", big), 413, false},
			{"LoginMediaType", req("POST", "/auth/login", alice, "Content-Type", "text/plain; charset=utf-8"), 415, true},
			{"LoginCrossOrigin", req("POST", "/auth/login", alice, "Origin", "https://evil.example"), 403, false},
			{"ProfileXSessionID", req("GET", "/profile", "", "X-Session-Id", tok), 200, false},
			{"ProfileBearer", req("GET", "/profile", "", "Authorization", "Bearer "+tok), 200, false},
			{"ProfileCookie", req("GET", "/profile", "", "Cookie", "sid="+tok), 200, false},
			{"ProfileNoSession", req("GET", "/profile", ""), 401, true},
			{"ProfileInvalidSession", req("GET", "/profile", "", "X-Session-Id", strings.Repeat("A", 43)), 401, false},
			{"SessionsOK", req("GET", "/auth/sessions", "", "X-Session-Id", tok), 200, false},
			{"SessionsNoSession", req("GET", "/auth/sessions", ""), 401, true},
			{"RevokeUnknown", req("DELETE", "/auth/sessions/nope", "", "X-Session-Id", tok), 404, false},
			{"RevokeNoSession", req("DELETE", "/auth/sessions/nope", ""), 401, true},
			{"RevokeCrossOrigin", req("DELETE", "/auth/sessions/nope", "", "X-Session-Id", tok, crossUA, "same-site"), 403, false},
			{"LogoutNoSession", req("POST", "/auth/logout", ""), 401, true},
			{"LogoutCrossOrigin", req("POST", "/auth/logout", "", "X-Session-Id", tok, crossUA, cross), 403, false},
			{"LogoutAllNoSession", req("POST", "/auth/logout-all", ""), 401, true},
			{"LogoutAllCrossOrigin", req("POST", "/auth/logout-all", "", "X-Session-Id", tok, crossUA, cross), 403, false},
			{"RefreshInvalidSession", req("POST", "/auth/refresh", "", "Authorization", "Bearer short"), 401, false},
			{"RefreshCrossOrigin", req("POST", "/auth/refresh", "", "X-Session-Id", tok, crossUA, cross), 403, false},
			// A route that takes no body reads one sent anyway before
			// it acts (the ignored-body test in cmd/api shows nothing
			// changes).
			{"ProfileBodyTooLarge", req("GET", "/profile", big, "X-Session-Id", tok), 413, false},
			{"ProfileBodyBrokenOff", req("GET", "/profile", "{}", "X-Session-Id", tok).brokenOff(), 400, true},
			{"SessionsBodyTooLarge", req("GET", "/auth/sessions", big, "X-Session-Id", tok), 413, false},
			{"SessionsBodyBrokenOff", req("GET", "/auth/sessions", "{}", "X-Session-Id", tok).brokenOff(), 400, true},
			{"RevokeBodyTooLarge", req("DELETE", "/auth/sessions/nope", big, "X-Session-Id", tok), 413, false},
			{"RevokeBodyBrokenOff", req("DELETE", "/auth/sessions/nope", "{}", "X-Session-Id", tok).brokenOff(), 400, true},
			{"LogoutBodyTooLarge", req("POST", "/auth/logout", big, "X-Session-Id", tok), 413, false},
			{"LogoutBodyBrokenOff", req("POST", "/auth/logout", "{}", "X-Session-Id", tok).brokenOff(), 400, true},
			{"LogoutAllBodyTooLarge", req("POST", "/auth/logout-all", big, "X-Session-Id", tok), 413, false},
			{"LogoutAllBodyBrokenOff", req("POST", "/auth/logout-all", "{}", "X-Session-Id", tok).brokenOff(), 400, true},
			{"RefreshBodyTooLarge", req("POST", "/auth/refresh", big, "X-Session-Id", tok), 413, false},
			{"RefreshBodyBrokenOff", req("POST", "/auth/refresh", "{}", "X-Session-Id", tok).brokenOff(), 400, true},
			{"Healthz", req("GET", "/healthz", ""), 200, false},
			{"Readyz", req("GET", "/readyz", ""), 200, false},
			{"MetricsText", req("GET", "/metrics", ""), 200, false},
			{"MetricsOpenMetrics", req("GET", "/metrics", "", "Accept", "application/openmetrics-text;version=1.0.0"), 200, false},
			{"OpenAPI", req("GET", "/openapi.yaml", ""), 200, false},
			{"UnknownPath", req("GET", "/nope", ""), 404, true},
			{"TrailingSlash", req("GET", "/profile/", ""), 404, true},
			{"UnknownPathCrossOrigin", req("POST", "/nope", "", crossUA, cross), 403, true},
			{"MethodNotAllowed", req("GET", "/auth/login", ""), 405, true},
			{"MethodNotAllowedTemplate", req("GET", "/auth/sessions/abc", ""), 405, true},
			{"MethodNotAllowedMetrics", req("DELETE", "/metrics", ""), 405, true},
		} {
			t.Run(tc.name, func(t *testing.T) { ct.check(t, h, tc.call, tc.status, tc.docInvalid) })
		}

		t.Run("SessionLifecycle", func(t *testing.T) {
			tok := login(t, h, "lifecycle")
			other := login(t, h, "other")
			rec := ct.check(t, h, req("GET", "/auth/sessions", "", "X-Session-Id", other), 200, false)
			var list struct {
				Sessions []struct {
					ID      string `json:"id"`
					Current bool   `json:"current"`
				} `json:"sessions"`
			}
			decodeBody(t, rec, &list)
			id := ""
			for _, s := range list.Sessions {
				if s.Current {
					id = s.ID
				}
			}
			ct.check(t, h, req("DELETE", "/auth/sessions/"+id, "", "X-Session-Id", tok), 204, false)
			rec = ct.check(t, h, req("POST", "/auth/refresh", "", "X-Session-Id", tok), 200, false)
			tok = cookieOf(t, rec).Value
			ct.check(t, h, req("POST", "/auth/logout", "", "Cookie", "sid="+tok), 200, false)
			ct.check(t, h, req("POST", "/auth/logout-all", "", "X-Session-Id", login(t, h, "all")), 200, false)
		})

		t.Run("RateLimited", func(t *testing.T) {
			// The harness allows 100 attempts a minute per IP; a
			// client of its own uses them up with cheap refusals.
			const ip = "192.0.2.99:1234"
			for range 100 {
				h.do(req("POST", "/auth/register", `{"username":"x","password":"correct horse"}`).from(ip).request(""))
			}
			ct.check(t, h, req("POST", "/auth/register", `{"username":"eve","password":"correct horse"}`).from(ip), 429, false)
			ct.check(t, h, req("POST", "/auth/login", alice).from(ip), 429, false)
		})

		t.Run("SessionsRateLimited", func(t *testing.T) {
			// A user of its own spends the harness's budget for
			// listing sessions.
			tok := loginAs(t, h, "frank")
			spendSessions(t, h, tok, redisSessionsLimit.Burst)
			for _, r := range managedRoutes {
				ct.check(t, h, req(r.method, r.path, "", "X-Session-Id", tok), 429, false)
			}
		})
	})

	t.Run("RedisDown", func(t *testing.T) {
		h, srv := newRedisHarness(t)
		h.do(req("POST", "/auth/register", alice).request(""))
		tok := login(t, h, "outage")
		srv.Stop()
		for _, c := range []call{
			req("POST", "/auth/register", alice),
			req("POST", "/auth/login", alice),
			req("GET", "/profile", "", "X-Session-Id", tok),
			req("GET", "/auth/sessions", "", "X-Session-Id", tok),
			req("DELETE", "/auth/sessions/abc", "", "X-Session-Id", tok),
			req("POST", "/auth/refresh", "", "X-Session-Id", tok),
			req("POST", "/auth/logout", "", "X-Session-Id", tok),
			req("POST", "/auth/logout-all", "", "X-Session-Id", tok),
			req("GET", "/readyz", ""),
		} {
			t.Run(c.method+c.path, func(t *testing.T) { ct.check(t, h, c, 503, false) })
		}
	})

	// What a working Redis cannot be made to do: a hashing queue that is
	// full, and a bug.
	t.Run("Busy", func(t *testing.T) {
		h := newHarness(t)
		h.addUser(t, "alice", "correct horse")
		h.hasher.err = session.ErrBusy
		ct.check(t, h, req("POST", "/auth/register", `{"username":"bob","password":"correct horse"}`), 503, false)
		ct.check(t, h, req("POST", "/auth/login", alice), 503, false)
	})
	t.Run("Bug", func(t *testing.T) {
		h := newHarness(t)
		tok := h.addSession(h.addUser(t, "alice", "correct horse"), "ua").Token
		h.users.err = errors.New("unexpected")
		ct.check(t, h, req("POST", "/auth/register", `{"username":"bob","password":"correct horse"}`), 500, false)
		ct.check(t, h, req("POST", "/auth/login", alice), 500, false)
		h.store.panicOnLookup = true
		for _, r := range authRoutes {
			ct.check(t, h, req(r.method, r.path, "", "X-Session-Id", tok), 500, false)
		}
	})

	var missing []string
	for _, d := range ct.declared() {
		if !ct.seen[d] {
			missing = append(missing, d)
		}
	}
	if len(missing) > 0 {
		t.Errorf("responses the document declares that no exchange produced: %q", missing)
	}
}
