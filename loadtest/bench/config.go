package main

import (
	"bufio"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

var (
	// The upstream server of the compose file: the replicas' network alias.
	upstreamServer = regexp.MustCompile(`(?m)^(\s*)server\s+api-replicas:3000\b([^;]*);`)
	// The public listener of the compose file (any address, port 8080).
	publicListen = regexp.MustCompile(`(?m)^(\s*)listen\s+(?:\S*:)?8080\b([^;]*);`)
	// Any listener: address (optional) and port.
	anyListen = regexp.MustCompile(`(?m)^(\s*)listen\s+(?:\S*:)?(\d+)\b([^;]*);`)
	pidLine   = regexp.MustCompile(`(?m)^(\s*)pid\s+[^;]+;`)
)

// proxyConfig rewrites the repository's nginx.conf for host processes: each
// upstream server line of the replicas becomes one line per upstream
// address (with the same parameters), the public listener moves to 127.0.0.1:port and every
// other listener (stub_status, say) to 127.0.0.1 on a port from freePort,
// and the pid file goes to pidPath. Nothing else changes, so the figures
// are those of the production settings. It fails when the file no longer
// has the lines it rewrites, rather than measure something else.
func proxyConfig(conf string, upstreams []string, port int, pidPath string, freePort func() (int, error)) (string, error) {
	if len(upstreams) == 0 {
		return "", errors.New("no upstream addresses")
	}
	// One line, or more: the primary servers and the same again as backup.
	if n := len(upstreamServer.FindAllString(conf, -1)); n == 0 {
		return "", errors.New("nginx.conf has no line `server api-replicas:3000 ...;`")
	}
	if n := len(publicListen.FindAllString(conf, -1)); n != 1 {
		return "", fmt.Errorf("nginx.conf has %d lines `listen 8080 ...;`, want 1", n)
	}
	if n := len(pidLine.FindAllString(conf, -1)); n != 1 {
		return "", fmt.Errorf("nginx.conf has %d pid lines, want 1", n)
	}
	conf = upstreamServer.ReplaceAllStringFunc(conf, func(line string) string {
		m := upstreamServer.FindStringSubmatch(line)
		var b strings.Builder
		for i, addr := range upstreams {
			if i > 0 {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "%sserver %s%s;", m[1], addr, m[2])
		}
		return b.String()
	})
	var portErr error
	conf = anyListen.ReplaceAllStringFunc(conf, func(line string) string {
		m := anyListen.FindStringSubmatch(line)
		p := port
		if m[2] != "8080" {
			var err error
			if p, err = freePort(); err != nil {
				portErr = err
			}
		}
		return m[1] + "listen 127.0.0.1:" + strconv.Itoa(p) + m[3] + ";"
	})
	if portErr != nil {
		return "", portErr
	}
	conf = pidLine.ReplaceAllString(conf, "${1}pid "+pidPath+";")
	return conf, nil
}

// staticBody is what the static server answers: the size of a /profile.
const staticBody = `{"username":"loadtest-read-0","secretData":"This came from protected route"}`

// staticConfig is nginx answering a fixed 200 itself, with no log: the
// ceiling of nginx alone, and the trivial upstream behind the proxy
// ceiling.
func staticConfig(port int, pidPath string) string {
	return fmt.Sprintf(`# nginx answering a fixed 200 itself: the benchmark's ceiling and trivial upstream.
worker_processes auto;
pid %s;
error_log stderr warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    default_type application/json;
    server {
        listen 127.0.0.1:%d;
        location / {
            return 200 '%s';
        }
    }
}
`, pidPath, port, staticBody)
}

// parseCommandStats reads the calls of each command from INFO commandstats.
func parseCommandStats(info string) map[string]uint64 {
	out := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		for kv := range strings.SplitSeq(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, _ := strconv.ParseUint(v, 10, 64)
				out[name] = n
			}
		}
	}
	return out
}

// infoField reads one "name:value" field of an INFO answer.
func infoField(info, name string) (string, bool) {
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), name+":"); ok {
			return v, true
		}
	}
	return "", false
}

// ignoredCommands are the benchmark's own and the replicas' background
// commands, left out of the commands per request.
var ignoredCommands = map[string]bool{"info": true, "ping": true, "client|setinfo": true, "client|setname": true, "hello": true, "config|get": true, "select": true, "command": true, "command|docs": true}

// backgroundShare is the calls per request below which a command is taken
// for the replicas' background work (the Redis probe's write, say) rather
// than part of serving a request.
const backgroundShare = 0.01

// perRequest turns before and after command counts into calls per request,
// and sums those at or above backgroundShare apart from the rest.
func perRequest(before, after map[string]uint64, requests uint64) (calls map[string]float64, perReq, background float64) {
	calls = map[string]float64{}
	if requests == 0 {
		return calls, 0, 0
	}
	for name, n := range after {
		if ignoredCommands[name] || n <= before[name] {
			continue
		}
		v := float64(n-before[name]) / float64(requests)
		calls[name] = v
		if v >= backgroundShare {
			perReq += v
		} else {
			background += v
		}
	}
	return calls, perReq, background
}
