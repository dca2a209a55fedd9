package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// redisCLI runs redis-cli against the benchmark's Redis.
type redisCLI struct {
	port int
}

func (r redisCLI) run(args ...string) (string, error) {
	out, err := exec.Command("redis-cli", append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(r.port)}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("redis-cli %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (r redisCLI) commandStats() (map[string]uint64, error) {
	info, err := r.run("INFO", "commandstats")
	if err != nil {
		return nil, err
	}
	return parseCommandStats(info), nil
}

func (r redisCLI) usedMemory() (uint64, error) {
	info, err := r.run("INFO", "memory")
	if err != nil {
		return 0, err
	}
	v, ok := infoField(info, "used_memory")
	if !ok {
		return 0, fmt.Errorf("no used_memory in INFO memory")
	}
	return strconv.ParseUint(v, 10, 64)
}

// sessionTemplate is a real session, made by a real login, whose shape the
// clones copy: its packed record (see README, "Data in Redis") and its
// User-Agent as the user's UA table holds it.
type sessionTemplate struct {
	record    []byte
	userAgent string
}

// Offsets in a session record of the fields the clones change.
const (
	recordFormat   = 1
	recVerifier    = 1  // 16 bytes
	recUARef       = 41 // 8 bytes
	recNameLen     = 49 // then the username, then the IP
	recHead        = 50
	recCreated     = 17 // 6 bytes each, Unix ms big-endian
	recExpires     = 29
	recAbsolute    = 35
	templateScript = `local v = redis.call('GET', KEYS[1])
local ua = redis.call('HGET', KEYS[2], string.sub(v, 42, 49)) or ''
local function hex(s) return (s:gsub('.', function(c) return string.format('%02x', c:byte()) end)) end
return {hex(v), hex(ua)}`
)

// template reads one real session, made by a real login, whose shape the
// clones copy. It reads through a script that answers in hex, since a
// record is binary and redis-cli would print it raw.
func (r redisCLI) template() (sessionTemplate, error) {
	key, cursor := "", "0"
	for range 1000 {
		out, err := r.run("SCAN", cursor, "MATCH", "s:{*", "TYPE", "string", "COUNT", "1000")
		if err != nil {
			return sessionTemplate{}, err
		}
		lines := strings.Fields(out)
		if len(lines) > 1 {
			key = lines[1]
			break
		}
		if len(lines) == 0 || lines[0] == "0" {
			break
		}
		cursor = lines[0]
	}
	if key == "" {
		return sessionTemplate{}, fmt.Errorf("no session in Redis to copy")
	}
	uid, _, ok := strings.Cut(strings.TrimPrefix(key, "s:{"), "}")
	if !ok {
		return sessionTemplate{}, fmt.Errorf("session key %q: no hash tag", key)
	}
	out, err := r.run("EVAL", templateScript, "2", key, "ua:{"+uid+"}")
	if err != nil {
		return sessionTemplate{}, err
	}
	f := strings.Fields(out)
	if len(f) == 0 {
		return sessionTemplate{}, fmt.Errorf("session %s: empty answer", key)
	}
	rec, err := hex.DecodeString(f[0])
	if err != nil {
		return sessionTemplate{}, fmt.Errorf("session %s: %w", key, err)
	}
	var ua []byte
	if len(f) > 1 {
		if ua, err = hex.DecodeString(f[1]); err != nil {
			return sessionTemplate{}, fmt.Errorf("User-Agent of session %s: %w", key, err)
		}
	}
	if len(rec) < recHead+1 || rec[0] != recordFormat || recHead+int(rec[recNameLen]) > len(rec) {
		return sessionTemplate{}, fmt.Errorf("session %s is no record of format %d: the store's layout changed, update the benchmark's clones", key, recordFormat)
	}
	return sessionTemplate{record: rec, userAgent: string(ua)}, nil
}

// ms reads a time of the record at off.
func (t sessionTemplate) ms(off int) string {
	var v int64
	for _, b := range t.record[off : off+6] {
		v = v<<8 | int64(b)
	}
	return strconv.FormatInt(v, 10)
}

// withUser is the template's record for another username and verifier.
func (t sessionTemplate) withUser(verifier []byte, user string) string {
	rec := t.record
	ip := rec[recHead+int(rec[recNameLen]):]
	b := make([]byte, 0, recHead+len(user)+len(ip))
	b = append(b, rec[:recNameLen]...)
	copy(b[recVerifier:], verifier[:16])
	b = append(b, byte(len(user)))
	b = append(b, user...)
	return string(append(b, ip...))
}

// cloner writes sessions straight into Redis in the store's layout
// (services/api/internal/redisstore: the record s:{uid}:<public id>, the
// index member in i:{uid} and one UA table entry per user in ua:{uid}:
// all that Create writes, so that the memory per session counts all of
// it), copying a real session's record with fresh ids, secrets and
// verifiers, so that a million sessions cost seconds instead of a million
// argon2id logins. The benchmark checks that the service accepts a clone
// before it relies on them.
type cloner struct {
	tmpl    sessionTemplate
	perUser int
	made    int
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// writeRESP writes one command in the Redis protocol.
func writeRESP(w io.Writer, args ...string) {
	fmt.Fprintf(w, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(w, "$%d\r\n%s\r\n", len(a), a)
	}
}

// clone makes n more sessions through redis-cli --pipe and writes up to
// keep of them ("USERNAME TOKEN" lines, spread over all n) to sessions.
func (c *cloner) clone(r redisCLI, n, keep int, sessions io.Writer) error {
	cmd := exec.Command("redis-cli", "-h", "127.0.0.1", "-p", strconv.Itoa(r.port), "--pipe")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	out, err := os.CreateTemp("", "bench-pipe-*.log")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	w := bufio.NewWriterSize(stdin, 1<<20)
	every := max(1, n/max(keep, 1))
	var uid, user string
	t := c.tmpl
	ct, exp, abs := t.ms(recCreated), t.ms(recExpires), t.ms(recAbsolute)
	uaRef := string(t.record[recUARef : recUARef+8])
	for i := range n {
		if c.made%c.perUser == 0 {
			uid, user = randomString(8), fmt.Sprintf("bench-%d", c.made/c.perUser)
			writeRESP(w, "HSET", "ua:{"+uid+"}", uaRef, t.userAgent)
			writeRESP(w, "PEXPIREAT", "ua:{"+uid+"}", abs)
		}
		id, secret := randomString(16), randomString(32)
		token := uid + id + secret
		verifier := sha256.Sum256([]byte(secret))
		writeRESP(w, "SET", "s:{"+uid+"}:"+id, t.withUser(verifier[:], user), "PXAT", exp)
		writeRESP(w, "ZADD", "i:{"+uid+"}", ct, id)
		writeRESP(w, "PEXPIREAT", "i:{"+uid+"}", abs)
		if sessions != nil && i%every == 0 && keep > 0 {
			writeSessionLine(sessions, user, token)
			keep--
		}
		c.made++
	}
	if err := w.Flush(); err != nil {
		return err
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		b, _ := os.ReadFile(out.Name())
		return fmt.Errorf("redis-cli --pipe: %w: %s", err, b)
	}
	b, _ := os.ReadFile(out.Name())
	if !strings.Contains(string(b), "errors: 0") {
		return fmt.Errorf("redis-cli --pipe reported errors: %s", b)
	}
	return nil
}
