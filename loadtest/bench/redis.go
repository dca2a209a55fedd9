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

// template reads one real session hash, made by a real login, whose shape
// the clones copy.
func (r redisCLI) template() (map[string]string, error) {
	key, cursor := "", "0"
	for range 1000 {
		out, err := r.run("SCAN", cursor, "MATCH", "sess:*", "COUNT", "1000")
		if err != nil {
			return nil, err
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
		return nil, fmt.Errorf("no session in Redis to copy")
	}
	out, err := r.run("HGETALL", key)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	fields := map[string]string{}
	for i := 0; i+1 < len(lines); i += 2 {
		fields[lines[i]] = lines[i+1]
	}
	for _, f := range []string{"uid", "user", "id", "ct", "seen", "exp", "abs"} {
		if fields[f] == "" {
			return nil, fmt.Errorf("session %s has no field %q: the store's layout changed, update the benchmark's clones", key, f)
		}
	}
	return fields, nil
}

// cloner writes sessions straight into Redis in the store's layout
// (services/api/internal/redisstore: sess:{uid}:<hex sha256(token)>, its
// id map entry sid:{uid}:<public id> and idx:{uid}: all that Create
// writes, so that the memory per session counts all of it), copying a
// real session's fields, so that a million sessions cost seconds instead
// of a million argon2id logins. The benchmark checks
// that the service accepts a clone before it relies on them.
type cloner struct {
	fields  map[string]string
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
	f := c.fields
	for i := range n {
		if c.made%c.perUser == 0 {
			uid, user = randomString(8), fmt.Sprintf("bench-%d", c.made/c.perUser)
		}
		token := uid + randomString(32)
		sum := sha256.Sum256([]byte(token))
		member := hex.EncodeToString(sum[:])
		key := "sess:{" + uid + "}:" + member
		id := randomString(16)
		writeRESP(w, "HSET", key, "idm", "1", "uid", uid, "user", user, "id", id, "ct", f["ct"], "seen", f["seen"],
			"exp", f["exp"], "abs", f["abs"], "ua", f["ua"], "ip", f["ip"])
		writeRESP(w, "PEXPIREAT", key, f["exp"])
		writeRESP(w, "SET", "sid:{"+uid+"}:"+id, member, "PXAT", f["exp"])
		writeRESP(w, "ZADD", "idx:{"+uid+"}", f["ct"], member)
		writeRESP(w, "PEXPIREAT", "idx:{"+uid+"}", f["abs"])
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
