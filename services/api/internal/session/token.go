package session

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// Token format, from the contract: opaque to clients, 22 to 128 characters of
// the URL-safe base64 alphabet without padding.
const (
	MinTokenLen = 22
	MaxTokenLen = 128
)

// ValidToken reports whether s has the shape of a token. Anything else is an
// invalid session without asking the store, so it is also answered during a
// store outage.
func ValidToken(s string) bool {
	return len(s) >= MinTokenLen && len(s) <= MaxTokenLen && InTokenAlphabet(s)
}

// InTokenAlphabet reports whether every byte of s is one of A-Z a-z 0-9 _ -,
// the alphabet of RandomString. Ids made from it can go into Redis keys as
// hash tags: they hold no braces.
func InTokenAlphabet(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isTokenByte(s[i]) {
			return false
		}
	}
	return true
}

func isTokenByte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// RandomString returns n random bytes from crypto/rand, written in the token
// alphabet (URL-safe base64 without padding).
func RandomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
