package redisstore

import (
	"strings"
	"testing"
)

// TestRecordOffsetsMatchScripts pins the offsets of record.go that the Lua
// of scripts.go repeats (1-based there).
func TestRecordOffsetsMatchScripts(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want int
	}{
		{"verifier", offVerifier, 1},
		{"createdAt", offCreated, 17},
		{"lastSeenAt", offSeen, 23},
		{"expiresAt", offExpires, 29},
		{"absolute end", offAbsolute, 35},
		{"UA reference", offUARef, 41},
		{"username length", offNameLen, 49},
		{"header", recordHead, 50},
	} {
		if tc.got != tc.want {
			t.Errorf("offset of the %s: got %d, want %d (change the scripts with it)", tc.name, tc.got, tc.want)
		}
	}
	for _, lua := range []string{"#v >= 51", "string.sub(v, 2, 17)"} {
		if !strings.Contains(luaRecord, lua) {
			t.Errorf("luaRecord lacks %q", lua)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	v := verifierOf("secret")
	times := sessionTimes{1, 2, 3, maxRecordTime}
	ua := uaRefOf("agent")
	for _, tc := range []struct{ username, ip string }{
		{"alice", "192.0.2.1"},
		{"a", ""},
		{strings.Repeat("u", maxRecordUsername), strings.Repeat("é", 256)},
	} {
		rec, ok := decodeRecord(encodeRecord(v, times, ua, tc.username, tc.ip))
		if !ok {
			t.Fatalf("decodeRecord(%q, %q): not a record", tc.username, tc.ip)
		}
		if !rec.verifies(v) || rec.verifies(verifierOf("other")) {
			t.Errorf("verifier: does not verify its own secret, or verifies another")
		}
		if rec.times != times || rec.uaRef != string(ua[:]) || rec.username != tc.username || rec.ip != tc.ip {
			t.Errorf("decoded: got %+v, want times %+v, username %q, ip %q", rec, times, tc.username, tc.ip)
		}
	}
}

// FuzzDecodeRecord: the decoder never panics, and whatever it accepts
// round-trips to the same bytes, with a non-empty username and positive
// times.
func FuzzDecodeRecord(f *testing.F) {
	good := encodeRecord(verifierOf("s"), sessionTimes{1_800_000_000_000, 1_800_000_000_001, 1_800_000_360_000, 1_800_086_400_000}, uaRefOf("ua"), "alice", "203.0.113.7")
	for _, seed := range []string{good, good[:50], good[:51], "", "\x01", "\x02" + good[1:], good[:49] + "\xff" + good[50:], strings.Repeat("\x00", 60)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		rec, ok := decodeRecord(v)
		if !ok {
			return
		}
		if rec.username == "" || rec.times.created <= 0 || rec.times.seen <= 0 || rec.times.expires <= 0 || rec.times.absolute <= 0 {
			t.Fatalf("decodeRecord(%q) accepted %+v", v, rec)
		}
		if got := encodeRecord([verifierLen]byte([]byte(rec.verifier)), rec.times, [uaRefLen]byte([]byte(rec.uaRef)), rec.username, rec.ip); got != v {
			t.Fatalf("round trip of %q: got %q", v, got)
		}
	})
}
