// Command bench measures the whole system on this machine and writes the
// figures the README publishes.
//
// Docker's published ports cap throughput far below what the system does,
// so it runs the same programs as host processes on loopback: redis-server,
// replicas of the real API binary, and Debian's nginx with the repository's
// nginx.conf (only the upstream addresses, the listener and the pid file
// rewritten). In the same run it measures the ceilings of the machine:
// nginx answering a fixed 200 itself, the production nginx settings in front
// of that trivial upstream, and redis-benchmark GET on the same Redis. As a
// reference it loads a featureless gin + go-redis handler (featureless/)
// through the same nginx settings as GET /profile is loaded. Load comes
// from wrk and from the loadtest command, run as a user runs it.
//
// It writes loadtest/results/DATE.json and DATE.md and, with -readme,
// refreshes the table between the bench markers of README.md.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"redis-session-app/loadtest/internal/poll"
	"redis-session-app/loadtest/internal/scenario"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	repo           string
	out            string
	readme         bool
	duration       time.Duration
	workers        int
	replicas       int
	memSessions    int
	lookupSessions int
	journeyRate    int
	redisArgs      string
	docker         string
	compose        string
	keep           bool
	// render rewrites DATE.md (and the README) from an earlier DATE.json.
	render string
}

func parseOptions(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.StringVar(&o.repo, "repo", "..", "the repository's root")
	fs.StringVar(&o.out, "out", "results", "directory for DATE.json and DATE.md")
	fs.BoolVar(&o.readme, "readme", false, "also refresh the table between the bench markers of README.md")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each timed load (at most 2m)")
	fs.IntVar(&o.workers, "workers", 64, "closed-model workers of the maximum-rate runs")
	fs.IntVar(&o.replicas, "replicas", 3, "API replicas behind nginx")
	fs.IntVar(&o.memSessions, "memory-sessions", 100_000, "live sessions at which Redis memory per session is measured")
	fs.IntVar(&o.lookupSessions, "lookup-sessions", 1_000_000, "live sessions at which lookup latency is compared with 1,000 (0 skips)")
	fs.IntVar(&o.journeyRate, "journey-rate", 100, "open-model rate of the mixed and churn runs (their logins cost an argon2id hash each)")
	fs.StringVar(&o.redisArgs, "redis-args", "--hash-max-listpack-value 512", `redis-server settings; the default is what every deployment sets (docker-compose.yml, the Kubernetes overlays)`)
	fs.StringVar(&o.docker, "docker", "", "also load a running compose stack's nginx at this loopback URL (make up first); that figure is bounded by Docker's port proxy")
	fs.StringVar(&o.compose, "compose", "", `unless -docker is set, bring docker-compose.yml up with this Compose command ("docker compose"), under a project, ports and subnet of its own, for that figure, and take it down after; make bench passes it when Docker runs`)
	fs.StringVar(&o.render, "render", "", "measure nothing: write the Markdown (and with -readme the README's table) again from this results JSON")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (configs, logs, raw reports)")
	if err := fs.Parse(args[1:]); err != nil {
		return o, err
	}
	switch {
	case o.duration <= 0 || o.duration > 2*time.Minute:
		return o, errors.New("-duration must be in (0, 2m]")
	case o.workers < 1 || o.workers > 1000:
		return o, errors.New("-workers must be in [1, 1000]")
	case o.journeyRate < 1 || o.journeyRate > 10000:
		return o, errors.New("-journey-rate must be in [1, 10000]")
	case o.replicas < 1 || o.replicas > 8:
		return o, errors.New("-replicas must be in [1, 8]")
	case o.memSessions < 2000 || o.memSessions > 2_000_000:
		return o, errors.New("-memory-sessions must be in [2000, 2000000]")
	case o.lookupSessions != 0 && (o.lookupSessions < o.memSessions || o.lookupSessions > 5_000_000):
		return o, errors.New("-lookup-sessions must be 0 or in [-memory-sessions, 5000000]")
	}
	return o, nil
}

// bench holds the servers of one run and what it needs to reach them.
type bench struct {
	o         options
	dir       string
	ps        *procs
	loadtest  string
	redis     redisCLI
	redisProc *proc
	replicas  []int // ports
	// replicaProcs are the replicas, in the order of replicas.
	replicaProcs []*proc
	nginx        *proc
	// featureless is the reference handler's binary.
	featureless string
	// wrkUsers are the users whose tokens wrk sends as.
	wrkUsers  []*scenario.User
	nginxPort int
	proxyPort int
	static    int
	log       io.Writer
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseOptions(args)
	if err != nil {
		return err
	}
	if o.render != "" {
		raw, err := os.ReadFile(o.render)
		if err != nil {
			return err
		}
		var res Results
		if err := json.Unmarshal(raw, &res); err != nil {
			return fmt.Errorf("%s: %w", o.render, err)
		}
		res.Targets = nil
		res.judge()
		return res.write(o, stdout)
	}
	for _, tool := range []string{"redis-server", "redis-cli", "redis-benchmark", "nginx", "wrk", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: apt-get install -y redis-server redis-tools nginx-light wrk (make bench-deps)", tool)
		}
	}
	dir, err := os.MkdirTemp("", "bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(stdout, "work directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	b := &bench{o: o, dir: dir, ps: &procs{dir: dir}, log: stdout}
	defer b.ps.stopAll()

	res := &Results{Date: time.Now().UTC(), Settings: Settings{
		DurationSeconds: o.duration.Seconds(), Workers: o.workers, Replicas: o.replicas, LogLevel: "info", RedisArgs: o.redisArgs,
	}}
	res.Machine = describeMachine()
	res.Commit = gitCommit(o.repo)
	res.LoadAverageStart = loadAverage()

	steps := []struct {
		name string
		fn   func(context.Context, *Results) error
	}{
		{"build", b.build},
		{"start", b.start},
		{"ceilings", b.ceilings},
		{"profile at the maximum rate", b.profileMax},
		{"the featureless reference at the maximum rate", b.featurelessMax},
		{"profile at half the rate loadtest reached", b.profileHalf},
		{"a login storm beside reads", b.loginStorm},
		{"mixed and churn", b.journeys},
		{"sessions: memory and lookup at scale", b.sessionScale},
		{"the compose stack", b.dockerFigure},
	}
	for _, st := range steps {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fmt.Fprintf(stdout, "== %s\n", st.name)
		if err := st.fn(ctx, res); err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
	}
	res.LoadAverageEnd = loadAverage()
	res.Machine.Sharing = sharing(res.LoadAverageStart, res.Machine.Cores)
	res.judge()
	return res.write(o, stdout)
}

// build compiles the API, the load generator and the featureless
// reference into the work directory.
func (b *bench) build(ctx context.Context, _ *Results) error {
	api := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(b.dir, "api"), "./cmd/api")
	api.Dir = filepath.Join(b.o.repo, "services", "api")
	api.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := api.CombinedOutput(); err != nil {
		return fmt.Errorf("building the API: %w: %s", err, out)
	}
	lt := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(b.dir, "loadtest"), ".")
	lt.Dir = filepath.Join(b.o.repo, "loadtest")
	if out, err := lt.CombinedOutput(); err != nil {
		return fmt.Errorf("building loadtest: %w: %s", err, out)
	}
	b.loadtest = filepath.Join(b.dir, "loadtest")
	fl := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(b.dir, "featureless"), "./bench/featureless")
	fl.Dir = filepath.Join(b.o.repo, "loadtest")
	fl.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := fl.CombinedOutput(); err != nil {
		return fmt.Errorf("building the featureless reference: %w: %s", err, out)
	}
	b.featureless = filepath.Join(b.dir, "featureless")
	return nil
}

// start brings up Redis, the replicas, nginx with the production settings
// and the static nginx (the ceiling and trivial upstream) with the proxy
// ceiling in front of it.
func (b *bench) start(ctx context.Context, _ *Results) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	b.redis = redisCLI{port}
	// Persistence off, unlike the compose file's append-only file: reads
	// do not touch it, and a million sessions written at once would only
	// measure its rewrites.
	args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", b.dir},
		strings.Fields(b.o.redisArgs)...)
	b.redisProc, err = b.ps.start("redis", nil, "redis-server", args...)
	if err != nil {
		return err
	}
	if err := poll.Until(ctx, 10*time.Second, 100*time.Millisecond, func() error { _, err := b.redis.run("PING"); return err }); err != nil {
		return fmt.Errorf("redis did not answer: %w", err)
	}

	var upstreams []string
	for i := range b.o.replicas {
		p, err := freePort()
		if err != nil {
			return err
		}
		env := []string{
			"PORT=" + strconv.Itoa(p), "REDIS_ADDR=127.0.0.1:" + strconv.Itoa(port),
			"INSTANCE_ID=bench-" + strconv.Itoa(i+1), "LOG_LEVEL=info", "COOKIE_SECURE=false",
			"TRUSTED_PROXIES=127.0.0.1",
			// The load test logs in far more often than people do.
			"LOGIN_LIMIT_PER_USER=1000000/s", "LOGIN_LIMIT_PER_IP=1000000/s",
		}
		rp, err := b.ps.start(fmt.Sprintf("api-%d", i+1), env, filepath.Join(b.dir, "api"), "-host", "127.0.0.1")
		if err != nil {
			return err
		}
		b.replicas = append(b.replicas, p)
		b.replicaProcs = append(b.replicaProcs, rp)
		upstreams = append(upstreams, "127.0.0.1:"+strconv.Itoa(p))
	}
	for _, p := range b.replicas {
		if err := waitHTTP(ctx, b.ps, fmt.Sprintf("http://127.0.0.1:%d/readyz", p)); err != nil {
			return err
		}
	}

	if b.static, err = freePort(); err != nil {
		return err
	}
	if _, err := b.startNginx(ctx, "nginx-static", staticConfig(b.static, filepath.Join(b.dir, "nginx-static.pid")), b.static); err != nil {
		return err
	}
	if _, b.proxyPort, err = b.startProxy(ctx, "nginx-proxy", []string{"127.0.0.1:" + strconv.Itoa(b.static)}); err != nil {
		return err
	}
	if b.nginx, b.nginxPort, err = b.startProxy(ctx, "nginx", upstreams); err != nil {
		return err
	}
	fmt.Fprintf(b.log, "redis :%d, replicas %v, nginx :%d, proxy ceiling :%d, static :%d (logs in %s)\n",
		port, b.replicas, b.nginxPort, b.proxyPort, b.static, b.dir)
	return nil
}

// startProxy starts an nginx named name with the repository's nginx.conf
// in front of upstreams (host:port), on a free port it returns. On an
// error after nginx started, the returned proc is that nginx.
func (b *bench) startProxy(ctx context.Context, name string, upstreams []string) (*proc, int, error) {
	conf, err := os.ReadFile(filepath.Join(b.o.repo, "nginx.conf"))
	if err != nil {
		return nil, 0, err
	}
	port, err := freePort()
	if err != nil {
		return nil, 0, err
	}
	cfg, err := proxyConfig(string(conf), upstreams, port, filepath.Join(b.dir, name+".pid"), freePort)
	if err != nil {
		return nil, 0, err
	}
	p, err := b.startNginx(ctx, name, cfg, port)
	return p, port, err
}

func (b *bench) startNginx(ctx context.Context, name, conf string, port int) (*proc, error) {
	path := filepath.Join(b.dir, name+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if out, err := exec.Command("nginx", "-t", "-q", "-p", b.dir, "-c", path, "-e", filepath.Join(b.dir, name+"-error.log")).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("nginx -t %s: %w: %s", path, err, out)
	}
	p, err := b.ps.start(name, nil, "nginx", "-p", b.dir, "-c", path, "-e", filepath.Join(b.dir, name+"-error.log"), "-g", "daemon off;")
	if err != nil {
		return nil, err
	}
	return p, waitHTTP(ctx, b.ps, fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
}

// loadReport is the part of loadtest's JSON report the benchmark reads.
type loadReport struct {
	Requests     uint64   `json:"requests"`
	Errors       uint64   `json:"errors"`
	Wrong        uint64   `json:"wrong"`
	AchievedRate float64  `json:"achievedRate"`
	AskedRate    *float64 `json:"askedRate"`
	Shortfall    bool     `json:"shortfall"`
	// Failed is why loadtest exited non-zero, if it did.
	Failed string `json:"-"`
	All    struct {
		Latency Latency `json:"latencyMs"`
	} `json:"all"`
	Kinds []struct {
		Kind     string  `json:"kind"`
		Requests uint64  `json:"requests"`
		Rate     float64 `json:"rate"`
		Latency  Latency `json:"latencyMs"`
	} `json:"kinds"`
	Instances []struct {
		Instance string  `json:"instance"`
		Share    float64 `json:"share"`
	} `json:"instances"`
}

// system is what a timed load goes through: one nginx and the upstream
// processes behind it (the replicas, or the featureless reference).
type system struct {
	nginx     *proc
	upstreams []*proc
}

// service is nginx with the replicas behind it.
func (b *bench) service() system { return system{b.nginx, b.replicaProcs} }

// counters are the figures read before and after a timed load.
type counters struct {
	upstreamCPU float64
	nginxCPU    float64
	redisCPU    float64
	commands    map[string]uint64
}

// snapshot reads the CPU time of s and of Redis, and Redis's command
// counts. An upstream's CPU time is its user + system time in /proc, the
// figure a replica's own process_cpu_seconds_total reports (the Prometheus
// client reads the same /proc/self/stat), so the replicas and the
// featureless reference, which has no metrics, are measured alike.
func (b *bench) snapshot(s system) (counters, error) {
	c := counters{nginxCPU: treeCPU(s.nginx.pid()), redisCPU: treeCPU(b.redisProc.pid())}
	for _, p := range s.upstreams {
		v, err := cpuSeconds(p.pid())
		if err != nil {
			return c, fmt.Errorf("CPU time of %s: %w", p.name, err)
		}
		c.upstreamCPU += v
	}
	var err error
	c.commands, err = b.redis.commandStats()
	return c, err
}

// cpuPerRequest is the CPU time between two snapshots in µs per request:
// the upstreams', nginx's and Redis's.
func cpuPerRequest(before, after counters, requests uint64) (upstream, nginx, redis float64) {
	n := float64(requests)
	if n == 0 {
		return 0, 0, 0
	}
	return (after.upstreamCPU - before.upstreamCPU) / n * 1e6, (after.nginxCPU - before.nginxCPU) / n * 1e6, (after.redisCPU - before.redisCPU) / n * 1e6
}

// load runs loadtest with args (plus a JSON report and a pause after its
// set-up) and, when measure is set, reads the counters in that pause and
// after the run.
func (b *bench) load(ctx context.Context, name string, measure bool, args ...string) (*loadReport, *counters, *counters, error) {
	jsonPath := filepath.Join(b.dir, name+".json")
	args = append(args, "-json", jsonPath, "-html", filepath.Join(b.dir, name+".html"), "-progress", "0", "-start-after", "500ms")
	cmd := exec.CommandContext(ctx, b.loadtest, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	logf, err := os.Create(filepath.Join(b.dir, name+".txt"))
	if err != nil {
		return nil, nil, nil, err
	}
	defer logf.Close()
	cmd.Stdout = logf
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, err
	}
	var before *counters
	var snapErr error
	sc := bufio.NewScanner(stderr)
	var tail []string
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(logf, line)
		tail = append(tail[max(0, len(tail)-20):], line)
		if measure && before == nil && strings.HasPrefix(line, "set-up done") {
			c, err := b.snapshot(b.service())
			before, snapErr = &c, err
		}
	}
	waitErr := cmd.Wait()
	var after *counters
	if measure && before != nil && snapErr == nil {
		c, err := b.snapshot(b.service())
		after, snapErr = &c, err
	}
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("loadtest %s wrote no report (%v): %s", name, waitErr, strings.Join(tail, "\n"))
	}
	var rep loadReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		return nil, nil, nil, err
	}
	if snapErr != nil {
		return nil, nil, nil, snapErr
	}
	if measure && before == nil {
		return nil, nil, nil, errors.New("loadtest printed no set-up line")
	}
	if err := checkRun(name, &rep, waitErr, tail); err != nil {
		return nil, nil, nil, err
	}
	fmt.Fprintf(b.log, "  %-22s %9.0f req/s  p50 %7.3f ms  p99 %7.3f ms  errors %d\n", name, rep.AchievedRate, rep.All.Latency.P50, rep.All.Latency.P99, rep.Errors)
	if fl := figure(&rep).flaws(); fl != "" {
		fmt.Fprintf(b.log, "  %s is no valid figure: %s (see %s.txt); the targets that rest on it are not met\n", name, fl, name)
	}
	return &rep, before, after, nil
}

// checkRun reads how the loadtest run name ended, from its report, its
// exit (waitErr) and the last lines of its stderr (tail). Wrong answers
// end the benchmark: a service that answers one user with another's
// profile has no figures worth taking. A run that breached its thresholds
// is kept, with why in rep.Failed, and so are its errors and shortfall:
// the benchmark goes on, and the figure shows them and meets no target.
func checkRun(name string, rep *loadReport, waitErr error, tail []string) error {
	if rep.Wrong > 0 {
		return fmt.Errorf("loadtest %s: %d wrong answers (see %s.txt)", name, rep.Wrong, name)
	}
	if waitErr == nil {
		return nil
	}
	rep.Failed = waitErr.Error()
	for _, line := range slices.Backward(tail) {
		if why, ok := strings.CutPrefix(line, "loadtest: "); ok {
			rep.Failed = why
			break
		}
	}
	return nil
}

func (b *bench) url(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

func (b *bench) dur() string { return b.o.duration.String() }

func figure(r *loadReport) Figure {
	f := Figure{Rate: r.AchievedRate, Latency: r.All.Latency, Requests: r.Requests, Errors: r.Errors, Shortfall: r.Shortfall, Failed: r.Failed}
	if r.AskedRate != nil {
		f.Asked = *r.AskedRate
	}
	return f
}

func (b *bench) ceilings(ctx context.Context, res *Results) error {
	st, err := b.wrk(ctx, "static", b.url(b.static), nil)
	if err != nil {
		return err
	}
	px, err := b.wrk(ctx, "proxy", b.url(b.proxyPort), nil)
	if err != nil {
		return err
	}
	res.Ceilings.NginxStatic, res.Ceilings.NginxProxy = st, px
	out, err := exec.CommandContext(ctx, "redis-benchmark", "-h", "127.0.0.1", "-p", strconv.Itoa(b.redis.port),
		"-t", "get", "-n", "200000", "-c", "50", "--csv").CombinedOutput()
	if err != nil {
		return fmt.Errorf("redis-benchmark: %w: %s", err, out)
	}
	rps, err := parseBenchmarkCSV(string(out))
	if err != nil {
		return err
	}
	res.Ceilings.RedisGet = rps
	fmt.Fprintf(b.log, "  %-22s %9.0f req/s\n", "redis-benchmark GET", rps)
	return nil
}

// parseBenchmarkCSV reads the GET rate of redis-benchmark --csv.
func parseBenchmarkCSV(out string) (float64, error) {
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) >= 2 && strings.Trim(f[0], `"`) == "GET" {
			return strconv.ParseFloat(strings.Trim(f[1], `"`), 64)
		}
	}
	return 0, fmt.Errorf("no GET line in redis-benchmark's output: %q", out)
}

// profileMax loads GET /profile at the maximum rate twice: with wrk, for
// the rate and the CPU and Redis commands per request, and with loadtest,
// whose every answer is checked (the right user's profile), for the share
// of each replica.
func (b *bench) profileMax(ctx context.Context, res *Results) error {
	if err := b.wrkSessions(ctx, 100); err != nil {
		return err
	}
	before, err := b.snapshot(b.service())
	if err != nil {
		return err
	}
	full, err := b.wrk(ctx, "profile-max", b.url(b.nginxPort), b.wrkTokens())
	if err != nil {
		return err
	}
	after, err := b.snapshot(b.service())
	if err != nil {
		return err
	}
	p := &res.Profile
	p.Max = full
	p.ReplicaCPUMicros, p.NginxCPUMicros, p.RedisCPUMicros = cpuPerRequest(before, after, full.Requests)
	p.RedisCommands, p.RedisCommandsPerRequest, p.RedisBackgroundPerRequest = perRequest(before.commands, after.commands, full.Requests)
	fmt.Fprintf(b.log, "  CPU per request: replicas %.1f µs, nginx %.1f µs, redis %.1f µs; redis commands per request %.3f %v\n",
		p.ReplicaCPUMicros, p.NginxCPUMicros, p.RedisCPUMicros, p.RedisCommandsPerRequest, p.RedisCommands)

	rep, _, _, err := b.load(ctx, "profile-checked", false, "-scenario", "read", "-target", b.url(b.nginxPort),
		"-workers", strconv.Itoa(b.o.workers), "-duration", b.dur(), "-users", "100", "-max-error-rate", "0.01")
	if err != nil {
		return err
	}
	p.Checked = figure(rep)
	for _, in := range rep.Instances {
		p.ReplicaShare = append(p.ReplicaShare, Share{in.Instance, in.Share})
	}
	return nil
}

// clonedSessionsPerUser is how many of the cloned sessions share a user,
// SESSION_MAX_PER_USER's default. The figure of memory per session holds
// at that many: a user's i:{uid} and ua:{uid} are shared by its sessions, so fewer per
// user cost more each.
const clonedSessionsPerUser = 100

// writeSessionLine writes one line of loadtest's -sessions-file: a user
// and the token of one of its sessions.
func writeSessionLine(w io.Writer, user, token string) {
	fmt.Fprintf(w, "%s %s\n", user, token)
}

// featurelessKeyPrefix is the prefix of the featureless reference's keys
// (its KEY_PREFIX), followed by a token.
const featurelessKeyPrefix = "featureless:"

// featurelessMax loads the featureless reference exactly as profileMax
// loads GET /profile with wrk: as many processes as replicas, behind their
// own nginx with the repository's nginx.conf, the same tokens, connections
// and duration, and the CPU per request read the same way. Each token's
// key holds its user's name. They are stopped, and the keys deleted,
// before the next step.
func (b *bench) featurelessMax(ctx context.Context, res *Results) error {
	mset := []string{"MSET"}
	keys := []string{"DEL"}
	for _, u := range b.wrkUsers {
		mset = append(mset, featurelessKeyPrefix+u.Token, u.Name)
		keys = append(keys, featurelessKeyPrefix+u.Token)
	}
	if _, err := b.redis.run(mset...); err != nil {
		return err
	}
	var started []*proc
	defer func() {
		b.ps.stop(started...)
		_, _ = b.redis.run(keys...)
	}()
	var upstreams []string
	var s system
	for i := range b.o.replicas {
		p, err := freePort()
		if err != nil {
			return err
		}
		env := []string{"PORT=" + strconv.Itoa(p), "REDIS_ADDR=127.0.0.1:" + strconv.Itoa(b.redis.port), "KEY_PREFIX=" + featurelessKeyPrefix}
		fp, err := b.ps.start(fmt.Sprintf("featureless-%d", i+1), env, b.featureless)
		if err != nil {
			return err
		}
		started = append(started, fp)
		s.upstreams = append(s.upstreams, fp)
		upstreams = append(upstreams, "127.0.0.1:"+strconv.Itoa(p))
		if err := waitHTTP(ctx, b.ps, fmt.Sprintf("http://127.0.0.1:%d/readyz", p)); err != nil {
			return err
		}
	}
	var port int
	var err error
	s.nginx, port, err = b.startProxy(ctx, "nginx-featureless", upstreams)
	if s.nginx != nil {
		started = append(started, s.nginx)
	}
	if err != nil {
		return err
	}
	// wrk checks only the status: see once that an answer is the user's.
	if err := checkFeatureless(b.url(port), b.wrkUsers[0]); err != nil {
		return err
	}
	fmt.Fprintf(b.log, "  featureless %v behind nginx :%d\n", upstreams, port)

	before, err := b.snapshot(s)
	if err != nil {
		return err
	}
	full, err := b.wrk(ctx, "featureless-max", b.url(port), b.wrkTokens())
	if err != nil {
		return err
	}
	after, err := b.snapshot(s)
	if err != nil {
		return err
	}
	f := &Reference{Max: full, Processes: len(s.upstreams)}
	f.CPUMicros, f.NginxCPUMicros, f.RedisCPUMicros = cpuPerRequest(before, after, full.Requests)
	var commands map[string]float64
	commands, f.RedisCommandsPerRequest, _ = perRequest(before.commands, after.commands, full.Requests)
	res.Featureless = f
	fmt.Fprintf(b.log, "  CPU per request: featureless %.1f µs, nginx %.1f µs, redis %.1f µs; redis commands per request %.3f %v\n",
		f.CPUMicros, f.NginxCPUMicros, f.RedisCPUMicros, f.RedisCommandsPerRequest, commands)

	// The same open-model load as profileHalf's, so that the p99 target
	// is read beside what a handler that does nothing but read Redis gets
	// on this machine at that rate.
	file := filepath.Join(b.dir, "sessions-featureless.txt")
	var lines strings.Builder
	for _, u := range b.wrkUsers {
		writeSessionLine(&lines, u.Name, u.Token)
	}
	if err := os.WriteFile(file, []byte(lines.String()), 0o600); err != nil {
		return err
	}
	half, err := b.halfLoad(ctx, res, "featureless-half", port, "-scenario", "read", "-sessions-file", file)
	if err != nil {
		return err
	}
	f.Half = &half
	return nil
}

// checkFeatureless asks the featureless reference at url for u's profile.
func checkFeatureless(url string, u *scenario.User) error {
	req, err := http.NewRequest(http.MethodGet, url+"/profile", nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Session-Id", u.Token)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var got struct {
		Username string `json:"username"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK || got.Username != u.Name {
		return fmt.Errorf("the featureless reference answered %s's profile with status %d, username %q (%v)", u.Name, resp.StatusCode, got.Username, err)
	}
	return nil
}

// halfRate is half the rate loadtest itself reached at full load. The
// open-model runs are loadtest's, which costs some 40 µs of CPU per
// request on the cores it shares with the system; half of wrk's rate,
// sent by loadtest, would load the machine far more than half.
func (b *bench) halfRate(res *Results) string {
	full := res.Profile.Checked.Rate
	if full == 0 {
		full = res.Profile.Max.Rate
	}
	return strconv.Itoa(max(1, int(full/2)))
}

// profileHalf loads GET /profile at half the rate loadtest reached (halfRate), open model,
// and then the proxy ceiling's trivial upstream at the same rate with the
// same generator: the latency nothing behind this nginx can beat here.
func (b *bench) profileHalf(ctx context.Context, res *Results) error {
	half, err := b.halfLoad(ctx, res, "profile-half", b.nginxPort, "-scenario", "read", "-users", "100")
	if err != nil {
		return err
	}
	res.Profile.Half = half
	proxy, err := b.halfLoad(ctx, res, "proxy-half", b.proxyPort, "-scenario", "get", "-path", "/")
	if err != nil {
		return err
	}
	res.Ceilings.NginxProxyHalf = &proxy
	return nil
}

// halfLoad runs loadtest's open model at half the rate loadtest reached (halfRate)
// against the nginx on port, with the scenario that args give.
func (b *bench) halfLoad(ctx context.Context, res *Results, name string, port int, args ...string) (Figure, error) {
	args = append(args, "-target", b.url(port), "-rate", b.halfRate(res), "-duration", b.dur(), "-max-error-rate", "0.01")
	rep, _, _, err := b.load(ctx, name, false, args...)
	if err != nil {
		return Figure{}, err
	}
	return figure(rep), nil
}

// loginStorm runs reads at half the rate loadtest reached while a closed model of
// logins hammers the hashers, and compares the reads' p99 with the quiet
// one.
func (b *bench) loginStorm(ctx context.Context, res *Results) error {
	stormCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stormDone := make(chan error, 1)
	ready := make(chan struct{})
	var storm *loadReport
	go func() {
		cmd := exec.CommandContext(stormCtx, b.loadtest, "-scenario", "login", "-target", b.url(b.nginxPort),
			"-workers", "16", "-users", "32", "-duration", (b.o.duration + 3*time.Second).String(),
			"-max-error-rate", "1", "-progress", "0", "-json", filepath.Join(b.dir, "storm.json"))
		stderr, _ := cmd.StderrPipe()
		logf, _ := os.Create(filepath.Join(b.dir, "storm.txt"))
		defer logf.Close()
		cmd.Stdout = logf
		if err := cmd.Start(); err != nil {
			close(ready)
			stormDone <- err
			return
		}
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if !signalled && strings.HasPrefix(sc.Text(), "set-up done") {
				close(ready)
				signalled = true
			}
		}
		if !signalled {
			close(ready)
		}
		err := cmd.Wait()
		raw, rerr := os.ReadFile(filepath.Join(b.dir, "storm.json"))
		if rerr == nil {
			var rep loadReport
			if json.Unmarshal(raw, &rep) == nil {
				storm = &rep
				err = nil
			}
		}
		stormDone <- err
	}()
	<-ready
	// Let the storm reach its stride before the reads start.
	time.Sleep(time.Second)
	rep, _, _, err := b.load(ctx, "profile-storm", false, "-scenario", "read", "-target", b.url(b.nginxPort),
		"-rate", b.halfRate(res), "-duration", b.dur(), "-users", "100", "-user-prefix", "loadtest-storm-read-", "-max-error-rate", "0.01")
	if err != nil {
		return err
	}
	if err := <-stormDone; err != nil {
		return fmt.Errorf("login storm: %w", err)
	}
	res.Storm.Reads = figure(rep)
	if storm != nil {
		res.Storm.Logins = figure(storm)
		if storm.Wrong > 0 {
			return fmt.Errorf("login storm: %d wrong answers", storm.Wrong)
		}
	}
	if q := res.Profile.Half.Latency.P99; q > 0 {
		res.Storm.P99Ratio = rep.All.Latency.P99 / q
	}
	return nil
}

// journeys runs mixed and churn at -journey-rate, with their default
// journeys, each with as few users as lets every one of them go through
// a whole journey (journeyUsers).
func (b *bench) journeys(ctx context.Context, res *Results) error {
	for _, sc := range []string{"mixed", "churn"} {
		users := journeyUsers(b.o.journeyRate, b.o.duration, scenario.DefaultJourney(sc))
		rep, _, _, err := b.load(ctx, sc, false, "-scenario", sc, "-target", b.url(b.nginxPort),
			"-rate", strconv.Itoa(b.o.journeyRate), "-duration", b.dur(), "-users", strconv.Itoa(users), "-max-error-rate", "1")
		if err != nil {
			return err
		}
		j := Journey{Scenario: sc, Users: users, All: figure(rep)}
		for _, k := range rep.Kinds {
			j.Kinds = append(j.Kinds, KindFigure{k.Kind, k.Rate, k.Latency})
		}
		if !j.completed() {
			fmt.Fprintf(b.log, "  %s: no session reached its logout (see %s.txt)\n", sc, sc)
		}
		res.Journeys = append(res.Journeys, j)
	}
	return nil
}

// maxJourneyUsers is loadtest's bound on -users.
const maxJourneyUsers = 100_000

// journeyUsers is how many users an open-model run of journey j at rate
// requests a second for d shares out among, so that each sends at least
// 1.25 journeys' worth of steps and goes through one whole, logout
// included: with more, each would do only the start of its journey, and
// logins would be a larger share of the requests than a journey has.
func journeyUsers(rate int, d time.Duration, j scenario.Journey) int {
	steps := float64(len(j.Plan()))
	return min(maxJourneyUsers, max(1, int(float64(rate)*d.Seconds()/(steps*1.25))))
}

// sessionScale fills Redis with cloned sessions: it measures lookups among
// 1,000, the memory per session up to -memory-sessions, and lookups among
// -lookup-sessions.
func (b *bench) sessionScale(ctx context.Context, res *Results) error {
	tmpl, err := b.redis.template()
	if err != nil {
		return err
	}
	// The benchmark's own sessions, from every load so far, stay; the
	// clones are counted on top.
	c := &cloner{tmpl: tmpl, perUser: clonedSessionsPerUser}
	small := filepath.Join(b.dir, "sessions-small.txt")
	if err := b.cloneTo(c, 1000, 1000, small); err != nil {
		return err
	}
	rate := strconv.Itoa(max(100, int(res.Profile.Max.Rate/4)))
	lookup := func(name, file string) (Figure, error) {
		rep, _, _, err := b.load(ctx, name, false, "-scenario", "read", "-sessions-file", file, "-target", b.url(b.nginxPort),
			"-rate", rate, "-duration", b.dur(), "-max-error-rate", "0.01")
		if err != nil {
			return Figure{}, err
		}
		return figure(rep), nil
	}
	if res.Sessions.LookupSmall, err = lookup("lookup-1k", small); err != nil {
		return fmt.Errorf("reads of cloned sessions (has the store's layout changed?): %w", err)
	}
	res.Sessions.SmallCount = 1000

	m0, err := b.redis.usedMemory()
	if err != nil {
		return err
	}
	if err := c.clone(b.redis, b.o.memSessions-1000, 0, nil); err != nil {
		return err
	}
	m1, err := b.redis.usedMemory()
	if err != nil {
		return err
	}
	res.Sessions.MemoryCount = b.o.memSessions
	res.Sessions.BytesPerSession = float64(m1-m0) / float64(b.o.memSessions-1000)
	fmt.Fprintf(b.log, "  Redis memory per session at %d sessions: %.0f bytes\n", b.o.memSessions, res.Sessions.BytesPerSession)

	if b.o.lookupSessions == 0 {
		return nil
	}
	large := filepath.Join(b.dir, "sessions-large.txt")
	if err := b.cloneTo(c, b.o.lookupSessions-b.o.memSessions, 1000, large); err != nil {
		return err
	}
	res.Sessions.LargeCount = b.o.lookupSessions
	// Let Redis finish rehashing its grown tables before the reads.
	time.Sleep(3 * time.Second)
	res.Sessions.LookupLarge, err = lookup("lookup-large", large)
	return err
}

func (b *bench) cloneTo(c *cloner, n, keep int, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := c.clone(b.redis, n, keep, f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (b *bench) dockerFigure(ctx context.Context, res *Results) error {
	target := b.o.docker
	if target == "" && b.o.compose != "" {
		// The host figures are the run's; a stack that cannot start
		// costs its own row only.
		s, err := startCompose(ctx, b.o.compose, b.o.repo, b.dir, b.log)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, errNoImages):
			fmt.Fprintf(b.log, "  no compose stack figure: %v (make images)\n", err)
			return nil
		case err != nil:
			fmt.Fprintf(b.log, "  no compose stack figure: %v\n", err)
			return nil
		}
		defer s.down()
		target = s.nginx
	}
	if target == "" {
		return nil
	}
	// Ten users: their registrations and logins stay within the stack's
	// default limit of 30 a minute per client IP.
	rep, _, _, err := b.load(ctx, "docker", false, "-scenario", "read", "-target", target,
		"-workers", "32", "-duration", b.dur(), "-users", "10", "-max-error-rate", "0.01")
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		fmt.Fprintf(b.log, "  no compose stack figure: %v\n", err)
		return nil
	}
	f := figure(rep)
	res.Docker = &f
	return nil
}
