package httpapi

import (
	"net/netip"
	"strings"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.168.1.1/32"),
		netip.MustParsePrefix("fd00::/8"),
	}
	tests := []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"Peer", "203.0.113.1:443", nil, trusted, "203.0.113.1"},
		{"PeerIPv6", "[2001:db8::1]:443", nil, trusted, "2001:db8::1"},
		{"PeerMapped", "[::ffff:203.0.113.1]:443", nil, trusted, "203.0.113.1"},
		{"PeerZone", "[fe80::1%eth0]:443", nil, trusted, "fe80::1"},
		{"PeerBare", "203.0.113.1", nil, trusted, "203.0.113.1"},
		{"PeerUnparsable", "pipe", nil, trusted, "pipe"},
		{"UntrustedPeerXFFIgnored", "203.0.113.1:443", []string{"198.51.100.1"}, trusted, "203.0.113.1"},
		{"NoTrustedProxies", "10.0.0.1:443", []string{"198.51.100.1"}, nil, "10.0.0.1"},
		{"TrustedPeerNoXFF", "10.0.0.1:443", nil, trusted, "10.0.0.1"},
		{"TrustedPeerEmptyXFF", "10.0.0.1:443", []string{""}, trusted, "10.0.0.1"},
		{"OneHop", "10.0.0.1:443", []string{"198.51.100.1"}, trusted, "198.51.100.1"},
		{"SpoofedLeftIgnored", "10.0.0.1:443", []string{"1.1.1.1, 198.51.100.1"}, trusted, "198.51.100.1"},
		{"ChainOfProxies", "10.0.0.1:443", []string{"1.1.1.1, 198.51.100.1, 192.168.1.1, 10.2.2.2"}, trusted, "198.51.100.1"},
		{"SpacesTrimmed", "10.0.0.1:443", []string{"  198.51.100.1  ,   10.2.2.2 "}, trusted, "198.51.100.1"},
		{"LinesInOrder", "10.0.0.1:443", []string{"1.1.1.1", "198.51.100.1, 10.2.2.2", "10.3.3.3"}, trusted, "198.51.100.1"},
		{"AllTrustedTakesLeftmost", "10.0.0.1:443", []string{"10.5.5.5, 10.2.2.2"}, trusted, "10.5.5.5"},
		{"UnparsableStopsAtLastGood", "10.0.0.1:443", []string{"198.51.100.1, garbage, 10.2.2.2"}, trusted, "10.2.2.2"},
		{"UnparsableRightmostUsesPeer", "10.0.0.1:443", []string{"198.51.100.1, garbage"}, trusted, "10.0.0.1"},
		{"EmptyEntryStops", "10.0.0.1:443", []string{"198.51.100.1,,10.2.2.2"}, trusted, "10.2.2.2"},
		{"EntryWithPortIsUnparsable", "10.0.0.1:443", []string{"198.51.100.1:5555"}, trusted, "10.0.0.1"},
		{"MappedEntry", "10.0.0.1:443", []string{"::ffff:198.51.100.1"}, trusted, "198.51.100.1"},
		{"MappedTrustedEntry", "10.0.0.1:443", []string{"198.51.100.1, ::ffff:10.2.2.2"}, trusted, "198.51.100.1"},
		{"IPv6Chain", "[fd00::1]:443", []string{"2001:db8::7, fd00::2"}, trusted, "2001:db8::7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := clientIP(tc.remote, tc.xff, tc.trusted); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzClientIP checks that any X-Forwarded-For gives an address, never
// panics, and never picks a trusted proxy over an untrusted peer.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.1:443", "198.51.100.1, 10.2.2.2")
	f.Add("203.0.113.1:443", "1.1.1.1")
	f.Add("[fd00::1]:1", "::ffff:1.2.3.4,,fe80::1%eth0")
	f.Add("10.0.0.1:443", "\x00,\xff, ,")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		got := clientIP(remote, strings.Split(xff, "\n"), trusted)
		peer, ok := parseHostPort(remote)
		if !ok {
			if got != remote {
				t.Errorf("unparsable peer %q: got %q, want it as it is", remote, got)
			}
			return
		}
		a, err := netip.ParseAddr(got)
		if err != nil {
			t.Fatalf("got %q, want an address: %v", got, err)
		}
		if a.Is4In6() || a.Zone() != "" {
			t.Errorf("got %q, want it unmapped and without zone", got)
		}
		if !isTrusted(peer, trusted) && a != peer {
			t.Errorf("untrusted peer %v: got %v, want the peer", peer, a)
		}
	})
}
