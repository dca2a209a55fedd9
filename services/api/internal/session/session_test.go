package session_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"redis-session-app/services/api/internal/session"
)

func TestClientText(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"Short", "curl/8.0", "curl/8.0"},
		{"Exact", strings.Repeat("a", 512), strings.Repeat("a", 512)},
		{"Long", strings.Repeat("a", 600), strings.Repeat("a", 512)},
		// 511 ASCII bytes then a 3-byte character: keeping it would make 514.
		{"NoSplitRune", strings.Repeat("a", 511) + "€€", strings.Repeat("a", 511)},
		{"InvalidUTF8", "Moz\xff\xfeilla", "Moz\uFFFDilla"},
		{"InvalidUTF8Long", strings.Repeat("a\xff", 300), strings.Repeat("a\uFFFD", 128)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := session.ClientText(tc.in)
			if got != tc.want {
				t.Errorf("got %d bytes, want %d", len(got), len(tc.want))
			}
			if !utf8.ValidString(got) {
				t.Errorf("got invalid UTF-8 %q", got)
			}
		})
	}
}

func FuzzValidToken(f *testing.F) {
	for _, s := range []string{"", "abc", strings.Repeat("a", 22), strings.Repeat("a", 129), "aaaaaaaaaaaaaaaaaaaaa\x00", "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !session.ValidToken(s) {
			return
		}
		if len(s) < session.MinTokenLen || len(s) > session.MaxTokenLen {
			t.Errorf("ValidToken(%q) with %d bytes: got true, want false", s, len(s))
		}
		for _, r := range s {
			if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", r) {
				t.Errorf("ValidToken(%q): got true with %q, want false", s, r)
			}
		}
	})
}
