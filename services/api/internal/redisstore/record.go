package redisstore

import (
	"crypto/sha256"
	"crypto/subtle"
)

// A session record is the value of a session key: a fixed-width header the
// scripts read and patch at known offsets (GETRANGE, SETRANGE, string.sub),
// then the variable part. Times are Unix milliseconds, 6 bytes big-endian
// each (enough until the year 10889).
//
//	offset  size  field
//	0       1     format (recordFormat)
//	1       16    verifier: the first 16 bytes of SHA-256 of the token's secret
//	17      6     createdAt
//	23      6     lastSeenAt
//	29      6     expiresAt (idle end, never past the absolute end)
//	35      6     absolute end
//	41      8     User-Agent reference: the first 8 bytes of SHA-256 of the
//	              User-Agent, its field in the user's UA table
//	49      1     length n of the username (1 to 255)
//	50      n     username
//	50+n    rest  IP (client text, possibly empty)
//
// The offsets are repeated in the Lua of scripts.go (1-based there), which
// TestRecordOffsetsMatchScripts pins.
const (
	recordFormat = 1

	verifierLen = 16
	uaRefLen    = 8
	timeLen     = 6

	offVerifier = 1
	offCreated  = offVerifier + verifierLen // 17
	offSeen     = offCreated + timeLen      // 23
	offExpires  = offSeen + timeLen         // 29
	offAbsolute = offExpires + timeLen      // 35
	offUARef    = offAbsolute + timeLen     // 41
	offNameLen  = offUARef + uaRefLen       // 49
	recordHead  = offNameLen + 1            // 50

	// maxRecordUsername is what the one length byte can say; usernames
	// are at most 64 characters.
	maxRecordUsername = 255
	// maxRecordTime is the largest time 6 bytes hold.
	maxRecordTime = 1<<48 - 1
)

// record is a decoded session record. Its strings are parts of the value
// read: decoding allocates nothing.
type record struct {
	verifier string
	times    sessionTimes
	uaRef    string
	username string
	ip       string
}

// verifierOf is the verifier of a token's secret: what Redis keeps instead
// of the secret, from which no token can be rebuilt.
func verifierOf(secret string) [verifierLen]byte {
	sum := sha256.Sum256([]byte(secret))
	return [verifierLen]byte(sum[:verifierLen])
}

// uaRefOf is the reference of a User-Agent in the user's UA table.
func uaRefOf(userAgent string) [uaRefLen]byte {
	sum := sha256.Sum256([]byte(userAgent))
	return [uaRefLen]byte(sum[:uaRefLen])
}

// encodeRecord packs a session record. The caller has checked that the
// username is 1 to maxRecordUsername bytes and the times fit in 6 bytes.
func encodeRecord(verifier [verifierLen]byte, t sessionTimes, uaRef [uaRefLen]byte, username, ip string) string {
	b := make([]byte, recordHead, recordHead+len(username)+len(ip))
	b[0] = recordFormat
	copy(b[offVerifier:], verifier[:])
	putTime(b[offCreated:], t.created)
	putTime(b[offSeen:], t.seen)
	putTime(b[offExpires:], t.expires)
	putTime(b[offAbsolute:], t.absolute)
	copy(b[offUARef:], uaRef[:])
	b[offNameLen] = byte(len(username))
	b = append(b, username...)
	b = append(b, ip...)
	return string(b)
}

// decodeRecord unpacks a session record. Anything malformed (another
// format, too short, a time that is not positive, an expiry past the
// absolute end or an absolute end not after the creation, an empty or
// overlong username) is not a record: a corrupt value must not let anyone in.
func decodeRecord(v string) (record, bool) {
	if len(v) < recordHead+1 || v[0] != recordFormat {
		return record{}, false
	}
	n := int(v[offNameLen])
	if n == 0 || recordHead+n > len(v) {
		return record{}, false
	}
	t := sessionTimes{
		created:  getTime(v[offCreated:]),
		seen:     getTime(v[offSeen:]),
		expires:  getTime(v[offExpires:]),
		absolute: getTime(v[offAbsolute:]),
	}
	// Every writer keeps the expiry within the absolute end, which lies
	// after the creation: a record that says otherwise was not written by
	// this service and must not be believed.
	if t.created <= 0 || t.seen <= 0 || t.expires <= 0 || t.absolute <= t.created || t.expires > t.absolute {
		return record{}, false
	}
	return record{
		verifier: v[offVerifier:offCreated],
		times:    t,
		uaRef:    v[offUARef:offNameLen],
		username: v[recordHead : recordHead+n],
		ip:       v[recordHead+n:],
	}, true
}

// verifies reports, in constant time, whether the record's verifier is
// that of the secret whose verifier is want.
func (r record) verifies(want [verifierLen]byte) bool {
	return subtle.ConstantTimeCompare([]byte(r.verifier), want[:]) == 1
}

func putTime(b []byte, ms int64) {
	for i := timeLen - 1; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
}

func getTime(s string) int64 {
	var ms int64
	for i := range timeLen {
		ms = ms<<8 | int64(s[i])
	}
	return ms
}
