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
		{"OKTrailingSemicolon", "application/json;", `{"username":"alice","password":"` + pw + `"}`, false, 0, ""},
		{"OKQuotedCharset", `application/json ; charset="utf-8"`, `{"username":"alice","password":"` + pw + `"}`, false, 0, ""},
		{"OKEscapedFieldName", "application/json", `{"user\u006eame":"alice","password":"` + pw + `"}`, false, 0, ""},
		{"OKOtherCaseFieldIgnored", "application/json", `{"username":"alice","password":"` + pw + `","Password":"other-password"}`, false, 0, ""},
		{"OKSurrogatePair", "application/json", `{"username":"alice","password":"` + pw + `","note":"\ud83d\ude00"}`, false, 0, ""},
		{"OKSameNameInTwoObjects", "application/json", `{"username":"alice","password":"` + pw + `","a":{"x":1},"b":{"x":1}}`, false, 0, ""},
		{"ErrTextPlain", "text/plain", `{"username":"alice","password":"` + pw + `"}`, false, 415, "Content-Type must be application/json"},
		{"ErrForm", "application/x-www-form-urlencoded", "username=alice&password=" + pw, false, 415, "Content-Type must be application/json"},
		{"ErrJSONLookalike", "application/jsonx", `{}`, false, 415, "Content-Type must be application/json"},
		{"ErrUnparsableContentType", "/", `{}`, false, 415, "Content-Type must be application/json"},
		{"ErrEmptyParameter", "application/json;;", `{"username":"alice","password":"` + pw + `"}`, false, 415, "Content-Type must be application/json"},
		{"ErrParameterWithoutValue", "application/json; charset", `{"username":"alice","password":"` + pw + `"}`, false, 415, "Content-Type must be application/json"},
		{"ErrDuplicateParameter", "application/json; charset=utf-8; charset=latin1", `{"username":"alice","password":"` + pw + `"}`, false, 415, "Content-Type must be application/json"},
		{"ErrTooLarge", "application/json", big, false, 413, "Request body too large"},
		{"ErrTooLargeChunked", "application/json", big, true, 413, "Request body too large"},
		{"ErrTooLargeByOneChunked", "application/json", exact + " ", true, 413, "Request body too large"},
		{"ErrEmpty", "application/json", "", false, 400, "request body is empty; it must be a JSON object"},
		{"ErrArray", "application/json", `[{"username":"alice"}]`, false, 400, "request body must be a JSON object"},
		{"ErrString", "application/json", `"alice"`, false, 400, "request body must be a JSON object"},
		{"ErrNull", "application/json", `null`, false, 400, "request body must be a JSON object"},
		{"ErrSyntax", "application/json", `{"username":"alice","password":"` + pw + `",}`, false, 400, "request body is not valid JSON (at byte 49)"},
		{"ErrNotJSON", "application/json", `username=alice`, false, 400, "request body is not valid JSON (at byte 1)"},
		{"ErrTruncated", "application/json", `{"username":"alice","password":"` + pw, false, 400, "request body is not valid JSON (it ends early)"},
		{"ErrTrailingObject", "application/json", `{"username":"alice","password":"` + pw + `"}{}`, false, 400, "request body must hold a single JSON object; found data after it"},
		{"ErrTrailingGarbage", "application/json", `{"username":"alice","password":"` + pw + `"} x`, false, 400, "request body must hold a single JSON object; found data after it"},
		{"ErrUsernameNumber", "application/json", `{"username":42,"password":"` + pw + `"}`, false, 400, "username must be a string"},
		{"ErrPasswordObject", "application/json", `{"username":"alice","password":{"p":"` + pw + `"}}`, false, 400, "password must be a string"},
		{"ErrUsernameMissing", "application/json", `{"password":"` + pw + `"}`, false, 400, "username is required"},
		{"ErrUsernameNull", "application/json", `{"username":null,"password":"` + pw + `"}`, false, 400, "username is required"},
		{"ErrPasswordMissing", "application/json", `{"username":"alice"}`, false, 400, "password is required"},
		{"ErrBothMissing", "application/json", `{}`, false, 400, "username is required"},
		{"ErrCapitalisedFields", "application/json", `{"Username":"alice","Password":"` + pw + `"}`, false, 400, "username is required"},
		{"ErrUpperCaseUsername", "application/json", `{"USERNAME":"alice","password":"` + pw + `"}`, false, 400, "username is required"},
		{"ErrCapitalisedPassword", "application/json", `{"username":"alice","Password":"` + pw + `"}`, false, 400, "password is required"},
		{"ErrUnicodeFoldedName", "application/json", `{"u\u017fername":"alice","password":"` + pw + `"}`, false, 400, "username is required"},
		{"ErrDuplicateUsername", "application/json", `{"username":"bob","username":"alice","password":"` + pw + `"}`, false, 400, "request body holds username more than once"},
		// I-JSON (RFC 7493): names are unique in every object, the
		// members the service ignores included.
		{"ErrDuplicateUnknownField", "application/json", `{"x":1,"username":"alice","x":2,"password":"` + pw + `"}`, false, 400, "request body holds a member name more than once (at byte 27)"},
		{"ErrDuplicateNestedField", "application/json", `{"username":"alice","password":"` + pw + `","a":{"b":1,"b":2}}`, false, 400, "request body holds a member name more than once (at byte 61)"},
		{"ErrDuplicateEscapedUnknownField", "application/json", `{"username":"alice","password":"` + pw + `","x":1,"\u0078":2}`, false, 400, "request body holds a member name more than once (at byte 56)"},
		{"ErrDuplicateEscapedPassword", "application/json", `{"username":"alice","password":"` + pw + `","passwor\u0064":"` + pw + `"}`, false, 400, "request body holds password more than once"},
		{"ErrPasswordTypeUsernameMissing", "application/json", `{"password":true}`, false, 400, "password must be a string"},
		{"ErrInvalidUTF8", "application/json", `{"username":"alice","password":"` + pw + "\xff" + `"}`, false, 400, "request body is not valid UTF-8"},
		{"ErrInvalidUTF8InName", "application/json", `{"username":"alice","password":"` + pw + `","` + "\xff" + `":1}`, false, 400, "request body is not valid UTF-8"},
		{"ErrInvalidUTF8InUnknownField", "application/json", `{"username":"alice","password":"` + pw + `","x":"` + "\xc3" + `"}`, false, 400, "request body is not valid UTF-8"},
		{"ErrLoneSurrogate", "application/json", `{"username":"alice","password":"` + pw + `\ud800"}`, false, 400, "password must be valid Unicode; it holds an unpaired surrogate escape"},
		{"ErrLoneSurrogateInUnknownField", "application/json", `{"username":"alice","password":"` + pw + `","note":"\ud800"}`, false, 400, "request body must be valid Unicode; it holds an unpaired surrogate escape (at byte 58)"},
		{"ErrLowSurrogateInNestedField", "application/json", `{"username":"alice","password":"` + pw + `","a":["x\udc00"]}`, false, 400, "request body must be valid Unicode; it holds an unpaired surrogate escape (at byte 57)"},
		{"ErrLoneSurrogateInName", "application/json", `{"username":"alice","password":"` + pw + `","\ud800":1}`, false, 400, "request body must be valid Unicode; it holds an unpaired surrogate escape (at byte 51)"},
		{"ErrHighSurrogateThenOther", "application/json", `{"username":"alice","password":"` + pw + `\ud800\u0041"}`, false, 400, "password must be valid Unicode; it holds an unpaired surrogate escape"},
		{"ErrLoneSurrogateInUsername", "application/json", `{"username":"ali\udfffce","password":"` + pw + `"}`, false, 400, "username must be valid Unicode; it holds an unpaired surrogate escape"},
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

// TestPasswordKeptByteForByte registers passwords written in the ways JSON
// allows and checks what is hashed is exactly what was sent, and that no
// two different inputs can become the same password.
func TestPasswordKeptByteForByte(t *testing.T) {
	tests := []struct {
		name       string
		password   string // as written in the JSON string literal
		wantStatus int
		wantError  string
		wantStored string // the password handed to the hasher
	}{
		{"RawUTF8", "pässwörd-1", 201, "", "pässwörd-1"},
		{"EscapedPair", `\ud83d\ude00abcdefgh`, 201, "", "\U0001F600abcdefgh"},
		{"EscapedPairUpperHex", `\uD83D\uDE00abcdefgh`, 201, "", "\U0001F600abcdefgh"},
		{"EscapedBackslashThenU", `\\ud800xxxxxxxx`, 201, "", `\ud800xxxxxxxx`},
		{"EscapedReplacementCharacter", `\ufffdxxxxxxxx`, 201, "", "\uFFFDxxxxxxxx"},
		{"ErrInvalidByteFF", "pass\xffword123", 400, "request body is not valid UTF-8", ""},
		{"ErrInvalidByteFE", "pass\xfeword123", 400, "request body is not valid UTF-8", ""},
		{"ErrTruncatedSequence", "pass\xe2\x82word123", 400, "request body is not valid UTF-8", ""},
		{"ErrEncodedSurrogate", "pass\xed\xa0\x80word123", 400, "request body is not valid UTF-8", ""},
		{"ErrLoneHighSurrogate", `pass\ud800word123`, 400, "password must be valid Unicode; it holds an unpaired surrogate escape", ""},
		{"ErrLoneLowSurrogate", `pass\udc00word123`, 400, "password must be valid Unicode; it holds an unpaired surrogate escape", ""},
		{"ErrHighSurrogateThenLetter", `\ud800\u0041xxxxxxxx`, 400, "password must be valid Unicode; it holds an unpaired surrogate escape", ""},
		{"ErrTwoHighSurrogates", `\ud800\ud800xxxxxxxx`, 400, "password must be valid Unicode; it holds an unpaired surrogate escape", ""},
		{"ErrReversedPair", `\ude00\ud83dxxxxxxxx`, 400, "password must be valid Unicode; it holds an unpaired surrogate escape", ""},
		{"ErrHighSurrogateAtEnd", `xxxxxxxx\ud83d`, 400, "password must be valid Unicode; it holds an unpaired surrogate escape", ""},
		{"ErrHighSurrogateThenRawLow", "xxxxxxxx\\ud83d\xed\xb8\x80", 400, "request body is not valid UTF-8", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			body := `{"username":"utf8user","password":"` + tc.password + `"}`
			rec := h.do(newRequest(http.MethodPost, "/auth/register", body))
			if tc.wantError != "" {
				checkResponse(t, rec, tc.wantStatus, `{"error":"`+tc.wantError+`"}`)
				if h.hasher.hashed != 0 {
					t.Errorf("hashes: got %v, want 0", h.hasher.hashed)
				}
				return
			}
			checkResponse(t, rec, tc.wantStatus, `{"username":"utf8user"}`)
			u, err := h.users.UserByName(t.Context(), "utf8user")
			if err != nil {
				t.Fatal(err)
			}
			if got, want := u.PasswordHash, "hash:"+tc.wantStored; got != want {
				t.Errorf("hashed: got %q, want %q", got, want)
			}
		})
	}
}

// TestLoginNoReplacementCollision: a password holding U+FFFD cannot be
// matched by a body whose invalid byte or lone surrogate encoding/json
// would have replaced with U+FFFD.
func TestLoginNoReplacementCollision(t *testing.T) {
	h := newHarness(t)
	h.addUser(t, "utf8user", "pass\uFFFDword123")
	tests := []struct {
		name       string
		password   string // as written in the JSON string literal
		wantStatus int
	}{
		{"Exact", "pass\uFFFDword123", 200},
		{"ExactEscaped", `pass\ufffdword123`, 200},
		{"InvalidByte", "pass\xfeword123", 400},
		{"LoneHighSurrogate", `pass\ud800word123`, 400},
		{"LoneLowSurrogate", `pass\udc00word123`, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := h.do(newRequest(http.MethodPost, "/auth/login", `{"username":"utf8user","password":"`+tc.password+`"}`))
			checkResponse(t, rec, tc.wantStatus, "")
		})
	}
}
