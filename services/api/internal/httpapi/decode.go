package httpapi

import (
	"bytes"
	"encoding/json/jsontext"
	json "encoding/json/v2"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// maxBodyBytes is the largest request body accepted, from the contract.
const maxBodyBytes = 65536

// readBody reads the request body: at most maxBodyBytes long (also when
// sent chunked), with a Content-Type of application/json or none at all.
func readBody(c *gin.Context) ([]byte, error) {
	if ct := c.Request.Header.Get("Content-Type"); ct != "" {
		// A Content-Type that does not parse, parameters included
		// ("application/json;;"), is not application/json.
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, refuseUnread(c, errMediaType)
		}
	}
	return readLimited(c)
}

// readLimited reads the request body, at most maxBodyBytes of it.
func readLimited(c *gin.Context) ([]byte, error) {
	if c.Request.ContentLength > maxBodyBytes {
		return nil, refuseUnread(c, errTooLarge)
	}
	body := c.Request.Body
	if body == nil {
		body = http.NoBody
	}
	b, err := io.ReadAll(http.MaxBytesReader(c.Writer, body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			// Closed after the answer, as for a declared length over the
			// limit: net/http would read on through what is left of a
			// chunked body (up to 256 KiB) before answering, and one that
			// stalls would get its answer at the read timeout.
			return nil, refuseUnread(c, errTooLarge)
		}
		return nil, badRequest("could not read the request body")
	}
	return b, nil
}

// readIgnoredBody reads and drops, before the route does anything, the
// body of a request to a route that takes none (logout, refresh, a
// revocation...). A body over maxBodyBytes is then a 413, and one that
// breaks off (a malformed chunk, a client or nginx hanging up, nginx
// refusing it as too large and closing the upstream connection) a 400,
// and in each case nothing has been done. Left to net/http, such a
// body was read only after the handler had revoked or refreshed the
// session: nginx answered 413 and the client lost its session all the
// same. A request without a body (the usual one, GET /profile included)
// costs one comparison.
func readIgnoredBody(d Deps) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength != 0 {
			if _, err := readLimited(c); err != nil {
				fail(c, d, err)
				return
			}
		}
		c.Next()
	}
}

// refuseUnread returns err for a request whose body is refused unread,
// and closes the connection after the answer: net/http would otherwise
// read what is left of a body of up to 256 KiB before answering, to keep
// the connection, and a client that declared a body it never sends would
// get its answer only at the read timeout.
func refuseUnread(c *gin.Context, err error) error {
	if c.Request.ContentLength != 0 {
		c.Header("Connection", "close")
	}
	return err
}

// decodeObject decodes b, which must be one JSON object and nothing else,
// into v with encoding/json/v2. Its defaults are the contract's input
// rules: member names match exactly ("Username" is not "username"),
// unknown members are ignored, and the body must be I-JSON (RFC 7493): a
// member name repeated in any object, invalid UTF-8 or an escaped
// surrogate that is not half of a pair, anywhere, unknown members
// included, is an error. Nothing is replaced with U+FFFD, so two different
// passwords can never decode to one.
//
// The errors are *httpError with a message that names the problem: an
// offset or one of the contract's field names, never a value, so a
// password cannot end up in a response.
func decodeObject(b []byte, v any) error {
	dec := jsontext.NewDecoder(bytes.NewReader(b))
	switch dec.PeekKind() {
	case '{':
	case 0:
		if len(bytes.TrimLeft(b, " \t\r\n")) == 0 {
			return badRequest("request body is empty; it must be a JSON object")
		}
		// Not JSON at all: the decoder says where.
	default:
		return badRequest("request body must be a JSON object")
	}
	if err := json.UnmarshalDecode(dec, v); err != nil {
		return decodeError(b, err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return badRequest("request body must hold a single JSON object; found data after it")
	}
	return nil
}

// fieldNames are the members the contract knows, by their JSON pointer:
// only these are named in error messages, so that a client's own member
// names are never echoed.
var fieldNames = map[jsontext.Pointer]string{"/username": "username", "/password": "password"}

// decodeError turns an error of decodeObject into the client's 400.
// encoding/json/v2 exports no error for invalid UTF-8 or a lone surrogate,
// so once it has refused the body, the message is worded from the body:
// invalid UTF-8 anywhere is named first, then a surrogate escape at the
// offset the error reports.
func decodeError(b []byte, err error) error {
	var semantic *json.SemanticError
	if errors.As(err, &semantic) {
		if name, ok := fieldNames[semantic.JSONPointer]; ok {
			return badRequest(name + " must be a string")
		}
		return badRequest("request body is not valid JSON")
	}
	var syntax *jsontext.SyntacticError
	if !errors.As(err, &syntax) {
		return badRequest("request body is not valid JSON")
	}
	name, known := fieldNames[syntax.JSONPointer]
	at := syntax.ByteOffset
	// Offsets in messages count from 1, as encoding/json's did.
	where := " (at byte " + strconv.FormatInt(at+1, 10) + ")"
	switch {
	case !utf8.Valid(b):
		return badRequest("request body is not valid UTF-8")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("request body is not valid JSON (it ends early)")
	case errors.Is(err, jsontext.ErrDuplicateName) && known:
		return badRequest(fmt.Sprintf("request body holds %s more than once", name))
	case errors.Is(err, jsontext.ErrDuplicateName):
		// JSON leaves duplicate names undefined, and "last wins" in one
		// parser and "first wins" in another is how a body comes to
		// mean two things.
		return badRequest("request body holds a member name more than once" + where)
	case at < int64(len(b)) && loneSurrogate(b[at:]) && known:
		return badRequest(name + " must be valid Unicode; it holds an unpaired surrogate escape")
	case at < int64(len(b)) && loneSurrogate(b[at:]):
		return badRequest("request body must be valid Unicode; it holds an unpaired surrogate escape" + where)
	}
	return badRequest("request body is not valid JSON" + where)
}

// loneSurrogate reports whether b starts with the \u escape of a UTF-16
// surrogate, which is where encoding/json/v2 points when one is not half
// of a pair.
func loneSurrogate(b []byte) bool {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return false
	}
	n, err := strconv.ParseUint(string(b[2:6]), 16, 16)
	return err == nil && utf16.IsSurrogate(rune(n))
}

// decodeCredentials decodes a register or login body and checks both fields
// are there: "username" and "password", each a string.
func decodeCredentials(c *gin.Context) (username, password string, err error) {
	b, err := readBody(c)
	if err != nil {
		return "", "", err
	}
	// Pointers, so that an absent member and null, which leaves a
	// pointer nil, both count as missing.
	var in struct {
		Username *string `json:"username"`
		Password *string `json:"password"`
	}
	if err := decodeObject(b, &in); err != nil {
		return "", "", err
	}
	if in.Username == nil {
		return "", "", badRequest("username is required")
	}
	if in.Password == nil {
		return "", "", badRequest("password is required")
	}
	return *in.Username, *in.Password, nil
}

// writeJSON answers status with v encoded as JSON straight into the
// response, where gin's c.JSON encodes into a buffer and then copies it:
// for a listing of 100 sessions (about 30 KB) that copy and its garbage
// were a tenth of the route's CPU. Invalid UTF-8 in a string becomes
// U+FFFD, as c.JSON does, instead of cutting the body short: a session
// stored by a version that kept the client's bytes as they came may hold
// some.
func writeJSON(c *gin.Context, status int, v any) {
	c.Header("Content-Type", "application/json; charset=utf-8")
	c.Status(status)
	if err := json.MarshalWrite(c.Writer, v, jsontext.AllowInvalidUTF8(true)); err != nil {
		// The status line is out; all that is left is to record it.
		_ = c.Error(err)
	}
}
