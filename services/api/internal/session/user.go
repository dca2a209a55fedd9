package session

import (
	"strings"
	"unicode/utf8"
)

// Limits on credentials, from the contract.
const (
	MinUsernameLen = 3
	MaxUsernameLen = 64
	MinPasswordLen = 8   // Unicode characters
	MaxPasswordLen = 128 // Unicode characters
)

// ValidUsername reports whether name is 3 to 64 characters of
// A-Z a-z 0-9 . _ -. Nothing is trimmed.
func ValidUsername(name string) bool {
	if len(name) < MinUsernameLen || len(name) > MaxUsernameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(isTokenByte(c) || c == '.') {
			return false
		}
	}
	return true
}

// ValidPassword reports whether pw is valid UTF-8 of 8 to 128 characters.
func ValidPassword(pw string) bool {
	if !utf8.ValidString(pw) {
		return false
	}
	n := utf8.RuneCountInString(pw)
	return n >= MinPasswordLen && n <= MaxPasswordLen
}

// CanonicalUsername is the form of a username under which it is unique and
// rate limited: names differing only in case are one user.
func CanonicalUsername(name string) string {
	return strings.ToLower(name)
}
