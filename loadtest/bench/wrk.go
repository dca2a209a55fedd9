package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"redis-session-app/loadtest/internal/scenario"
)

// The maximum rates (the two ceilings and GET /profile at full load) are
// measured with wrk, a C load generator, rather than with loadtest: on a
// machine whose cores the generator shares with what it measures, every
// microsecond the generator spends is taken from the system. loadtest
// checks every answer and costs some 40 µs of CPU per request (Go's HTTP
// client, vegeta's bookkeeping, the checks); measured with it, nginx
// answering a fixed 200 reached 14,000 req/s on the 2-core machine, with
// wrk 170,000. loadtest stays the generator of every figure that needs its
// checks or its open model: the half-rate p99, the login storm, the
// journeys. wrk checks only the status (every answer must be a 2xx).

// wrkScript is the Lua that makes wrk send GET path with the tokens in
// turn (none: no header), and print its figures as one JSON line when it
// is done. Latencies are in microseconds.
const wrkScript = `local tokens = {%s}
local path = %q
local n = 0
request = function()
  n = n + 1
  if #tokens == 0 then
    return wrk.format("GET", path)
  end
  return wrk.format("GET", path, {["X-Session-Id"] = tokens[n %% #tokens + 1]})
end
done = function(s, lat, req)
  io.write(string.format('{"requests":%%d,"durationUs":%%d,"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d,"p50":%%d,"p90":%%d,"p99":%%d,"p999":%%d,"max":%%d}\n',
    s.requests, s.duration, s.errors.connect, s.errors.read, s.errors.write, s.errors.status, s.errors.timeout,
    lat:percentile(50), lat:percentile(90), lat:percentile(99), lat:percentile(99.9), lat.max))
end
`

// wrkSummary is what wrkScript prints.
type wrkSummary struct {
	Requests   uint64 `json:"requests"`
	DurationUs uint64 `json:"durationUs"`
	Connect    uint64 `json:"connect"`
	Read       uint64 `json:"read"`
	Write      uint64 `json:"write"`
	Status     uint64 `json:"status"`
	Timeout    uint64 `json:"timeout"`
	P50        uint64 `json:"p50"`
	P90        uint64 `json:"p90"`
	P99        uint64 `json:"p99"`
	P999       uint64 `json:"p999"`
	Max        uint64 `json:"max"`
}

// parseWrk reads the figures from wrk's output: the last line that
// wrkScript printed.
func parseWrk(out string) (Figure, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		line := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var s wrkSummary
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			return Figure{}, fmt.Errorf("wrk's summary %q: %w", line, err)
		}
		if s.DurationUs == 0 {
			return Figure{}, errors.New("wrk ran for no time")
		}
		ms := func(us uint64) float64 { return float64(us) / 1000 }
		return Figure{
			Rate:     float64(s.Requests) / (float64(s.DurationUs) / 1e6),
			Requests: s.Requests,
			Errors:   s.Connect + s.Read + s.Write + s.Status + s.Timeout,
			Latency:  Latency{P50: ms(s.P50), P90: ms(s.P90), P99: ms(s.P99), P999: ms(s.P999), Max: ms(s.Max)},
		}, nil
	}
	return Figure{}, fmt.Errorf("no summary in wrk's output: %q", out)
}

// wrk loads url's path with the closed model of b.o.workers connections
// for the benchmark's duration, sending the tokens in turn.
func (b *bench) wrk(ctx context.Context, name, url string, tokens []string) (Figure, error) {
	path := "/profile"
	quoted := make([]string, len(tokens))
	for i, t := range tokens {
		quoted[i] = strconv.Quote(t)
	}
	script := filepath.Join(b.dir, name+".lua")
	if err := os.WriteFile(script, fmt.Appendf(nil, wrkScript, strings.Join(quoted, ","), path), 0o644); err != nil {
		return Figure{}, err
	}
	cmd := exec.CommandContext(ctx, "wrk", "-t1", "-c"+strconv.Itoa(b.o.workers), "-d"+b.dur(), "--timeout", "10s", "-s", script, url+path)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	_ = os.WriteFile(filepath.Join(b.dir, name+".txt"), out.Bytes(), 0o644)
	if err != nil {
		return Figure{}, fmt.Errorf("wrk %s: %w: %s", name, err, out.String())
	}
	f, err := parseWrk(out.String())
	if err != nil {
		return Figure{}, err
	}
	fmt.Fprintf(b.log, "  %-22s %9.0f req/s  p50 %7.3f ms  p99 %7.3f ms  errors %d (wrk)\n", name, f.Rate, f.Latency.P50, f.Latency.P99, f.Errors)
	if f.Errors > 0 {
		return Figure{}, fmt.Errorf("wrk %s: %d of %d requests failed or were not 2xx (see %s.txt)", name, f.Errors, f.Requests, name)
	}
	return f, nil
}

// wrkSessions registers n users through nginx and logs each in once, for
// the tokens wrk sends (b.wrkUsers), with loadtest's own set-up (which
// waits out 429s).
func (b *bench) wrkSessions(ctx context.Context, n int) error {
	users := make([]*scenario.User, n)
	for i := range users {
		users[i] = scenario.NewUser("bench-wrk-"+strconv.Itoa(i), "bench-wrk-password")
	}
	setup := &scenario.Setup{
		Client:    &http.Client{Timeout: 15 * time.Second},
		Endpoints: scenario.NewEndpoints(b.url(b.nginxPort)),
		Parallel:  4,
		Deadline:  time.Now().Add(time.Minute),
		Log:       io.Discard,
	}
	if _, err := setup.Run(ctx, users, true); err != nil {
		return fmt.Errorf("logging in the users wrk sends as: %w", err)
	}
	b.wrkUsers = users
	return nil
}

// wrkTokens are the tokens of b.wrkUsers, in order.
func (b *bench) wrkTokens() []string {
	tokens := make([]string, len(b.wrkUsers))
	for i, u := range b.wrkUsers {
		tokens[i] = u.Token
	}
	return tokens
}
