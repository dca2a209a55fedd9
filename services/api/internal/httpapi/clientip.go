package httpapi

import (
	"net/netip"
	"strings"
)

// clientIP returns the address of the client, bare and without a port.
//
// It is the peer address, unless the peer is a trusted proxy: then the
// X-Forwarded-For chain (all header lines, in order) is walked from the
// right, each proxy having appended the address it saw, and the first
// address that is not itself a trusted proxy is the client. Entries left of
// it were written by the client and can be forged. An entry that does not
// parse stops the walk: what lies left of it is no more reliable, so the
// last good address (a trusted proxy) is used. X-Real-IP and Forwarded are
// never read: nginx in front sets X-Forwarded-For only.
//
// A peer address that does not parse (it always does behind net/http) is
// returned as it is, so that it still names something in logs and limits.
func clientIP(remoteAddr string, xff []string, trusted []netip.Prefix) string {
	peer, ok := parseHostPort(remoteAddr)
	if !ok {
		return remoteAddr
	}
	if !isTrusted(peer, trusted) || len(xff) == 0 {
		return peer.String()
	}
	last := peer
	for i := len(xff) - 1; i >= 0; i-- {
		line := xff[i]
		for line != "" {
			var entry string
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				entry, line = line[j+1:], line[:j]
			} else {
				entry, line = line, ""
			}
			a, err := netip.ParseAddr(strings.TrimSpace(entry))
			if err != nil {
				return last.String()
			}
			a = a.Unmap().WithZone("")
			if !isTrusted(a, trusted) {
				return a.String()
			}
			last = a
		}
	}
	return last.String()
}

// parseHostPort reads "ip:port" or a bare IP, mapping IPv4-in-IPv6 to IPv4
// and dropping any IPv6 zone.
func parseHostPort(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
