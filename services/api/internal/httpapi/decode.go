package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// maxBodyBytes is the largest request body accepted, from the contract.
const maxBodyBytes = 65536

// readObject reads the request body and returns it when it is one JSON
// object: at most maxBodyBytes long (also when sent chunked), valid UTF-8,
// with a Content-Type of application/json or none at all. The errors it
// returns are *httpError with a message that names the problem: an offset
// or a field name, never a value, so a password cannot end up in a
// response.
func readObject(c *gin.Context) ([]byte, error) {
	if ct := c.Request.Header.Get("Content-Type"); ct != "" {
		// A Content-Type that does not parse, parameters included
		// ("application/json;;"), is not application/json.
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, errMediaType
		}
	}
	if c.Request.ContentLength > maxBodyBytes {
		return nil, errTooLarge
	}
	body := c.Request.Body
	if body == nil {
		body = http.NoBody
	}
	b, err := io.ReadAll(http.MaxBytesReader(c.Writer, body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, errTooLarge
		}
		return nil, badRequest("could not read the request body")
	}

	// encoding/json would replace each invalid byte with U+FFFD, so two
	// different passwords would become the same one: every byte counts.
	if !utf8.Valid(b) {
		return nil, badRequest("request body is not valid UTF-8")
	}
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, badRequest("request body is empty; it must be a JSON object")
	}
	if trimmed[0] != '{' {
		return nil, badRequest("request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var obj json.RawMessage
	if err := dec.Decode(&obj); err != nil {
		return nil, decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badRequest("request body must hold a single JSON object; found data after it")
	}
	return obj, nil
}

func decodeError(err error) error {
	var syntax *json.SyntaxError
	switch {
	case errors.As(err, &syntax):
		return badRequest(fmt.Sprintf("request body is not valid JSON (at byte %d)", syntax.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("request body is not valid JSON (it ends early)")
	}
	return badRequest("request body is not valid JSON")
}

// objectFields returns the raw values of the members of obj, a valid JSON
// object, whose names are exactly one of names. Names are matched as
// written, after JSON unescaping and with regard to case: encoding/json
// would also take "Username" for "username", which the contract counts as
// an unknown field, and unknown fields are ignored.
//
// A wanted name that appears twice is refused rather than resolved: JSON
// leaves duplicate names undefined, and "last wins" in one parser and
// "first wins" in another is how a body comes to mean two things.
func objectFields(obj []byte, names ...string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil { // the opening brace
		return nil, decodeError(err)
	}
	fields := make(map[string]json.RawMessage, len(names))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, decodeError(err)
		}
		name, _ := tok.(string) // an object's keys are strings
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, decodeError(err)
		}
		if !slices.Contains(names, name) {
			continue
		}
		if _, dup := fields[name]; dup {
			return nil, badRequest(fmt.Sprintf("request body holds %s more than once", name))
		}
		fields[name] = v
	}
	return fields, nil
}

// stringField decodes the raw value of the field name: a JSON string, or
// absent or null, which give ok false.
func stringField(name string, raw json.RawMessage) (s string, ok bool, err error) {
	if raw == nil || string(raw) == "null" {
		return "", false, nil
	}
	if raw[0] != '"' {
		return "", false, badRequest(name + " must be a string")
	}
	// encoding/json replaces an escaped surrogate that is not half of a
	// pair with U+FFFD, so "\ud800" and "\udc00" would be one password.
	if hasLoneSurrogate(raw) {
		return "", false, badRequest(name + " must be valid Unicode; it holds an unpaired surrogate escape")
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, badRequest(name + " must be a string")
	}
	return s, true, nil
}

// hasLoneSurrogate reports whether the JSON string literal lit holds a
// \u escape of a UTF-16 surrogate that is not a high surrogate followed at
// once by an escaped low one.
func hasLoneSurrogate(lit []byte) bool {
	for i := 0; i < len(lit); i++ {
		if lit[i] != '\\' {
			continue
		}
		i++ // the escaped character
		if i >= len(lit) || lit[i] != 'u' {
			continue
		}
		r, ok := hex4(lit, i+1)
		i += 4
		if !ok {
			// Not reached for a valid literal; let Unmarshal refuse it.
			continue
		}
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true // a low surrogate with no high one before it
		case r >= 0xD800 && r <= 0xDBFF:
			if i+2 >= len(lit) || lit[i+1] != '\\' || lit[i+2] != 'u' {
				return true
			}
			lo, ok := hex4(lit, i+3)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 6
		}
	}
	return false
}

// hex4 reads the four hex digits of a \u escape at b[i:i+4].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[i:i+4]), 16, 16)
	return rune(n), err == nil
}

// decodeCredentials decodes a register or login body and checks both fields
// are there: exactly "username" and "password", each a string.
func decodeCredentials(c *gin.Context) (username, password string, err error) {
	obj, err := readObject(c)
	if err != nil {
		return "", "", err
	}
	fields, err := objectFields(obj, "username", "password")
	if err != nil {
		return "", "", err
	}
	username, hasUsername, err := stringField("username", fields["username"])
	if err != nil {
		return "", "", err
	}
	password, hasPassword, err := stringField("password", fields["password"])
	if err != nil {
		return "", "", err
	}
	if !hasUsername {
		return "", "", badRequest("username is required")
	}
	if !hasPassword {
		return "", "", badRequest("password is required")
	}
	return username, password, nil
}
