package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/gin-gonic/gin"
)

// maxBodyBytes is the largest request body accepted, from the contract.
const maxBodyBytes = 65536

// decode reads the request body into v, which must point to a struct. The
// body must be one JSON object, at most maxBodyBytes long (also when sent
// chunked), with a Content-Type of application/json or none at all.
// Unknown fields are ignored. The errors it returns are *httpError with a
// message that names the problem: an offset or a field name, never a value,
// so a password cannot end up in a response.
func decode(c *gin.Context, v any) error {
	if ct := c.Request.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if mt != "application/json" || (err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter)) {
			return errMediaType
		}
	}
	if c.Request.ContentLength > maxBodyBytes {
		return errTooLarge
	}
	body := c.Request.Body
	if body == nil {
		body = http.NoBody
	}
	b, err := io.ReadAll(http.MaxBytesReader(c.Writer, body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return errTooLarge
		}
		return badRequest("could not read the request body")
	}

	trimmed := bytes.TrimLeft(b, " \t\r\n")
	if len(trimmed) == 0 {
		return badRequest("request body is empty; it must be a JSON object")
	}
	if trimmed[0] != '{' {
		return badRequest("request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("request body must hold a single JSON object; found data after it")
	}
	return nil
}

func decodeError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return badRequest(fmt.Sprintf("request body is not valid JSON (at byte %d)", syntax.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("request body is not valid JSON (it ends early)")
	case errors.As(err, &typ) && typ.Field != "":
		return badRequest(fmt.Sprintf("%s must be %s", typ.Field, jsonKind(typ.Type.String())))
	case errors.As(err, &typ):
		return badRequest("request body must be a JSON object")
	}
	return badRequest("request body is not valid JSON")
}

// jsonKind names a Go type of a request field the way a client knows it.
func jsonKind(goType string) string {
	switch goType {
	case "string", "*string":
		return "a string"
	case "bool", "*bool":
		return "a boolean"
	}
	return "of another type"
}

// credentials is the body of register and login. The fields are pointers
// so that a missing field can be told from an empty one.
type credentials struct {
	Username *string `json:"username"`
	Password *string `json:"password"`
}

// decodeCredentials decodes a register or login body and checks both fields
// are there.
func decodeCredentials(c *gin.Context) (username, password string, err error) {
	var req credentials
	if err := decode(c, &req); err != nil {
		return "", "", err
	}
	if req.Username == nil {
		return "", "", badRequest("username is required")
	}
	if req.Password == nil {
		return "", "", badRequest("password is required")
	}
	return *req.Username, *req.Password, nil
}
