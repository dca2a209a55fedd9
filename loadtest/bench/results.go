package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"redis-session-app/loadtest/internal/report"
)

// Results is everything one benchmark run measured; its JSON form is
// loadtest/results/DATE.json.
type Results struct {
	Date             time.Time `json:"date"`
	Commit           string    `json:"commit"`
	Machine          Machine   `json:"machine"`
	LoadAverageStart string    `json:"loadAverageStart"`
	LoadAverageEnd   string    `json:"loadAverageEnd"`
	Settings         Settings  `json:"settings"`
	Ceilings         Ceilings  `json:"ceilings"`
	Profile          Profile   `json:"profile"`
	// Featureless is the reference: absent from runs before it was measured.
	Featureless *Reference `json:"featureless,omitempty"`
	Storm       Storm      `json:"loginStorm"`
	Journeys    []Journey  `json:"journeys"`
	Sessions    Sessions   `json:"sessions"`
	// Docker is the compose stack's figure, bounded by Docker's port proxy.
	Docker  *Figure  `json:"docker,omitempty"`
	Targets []Target `json:"targets"`
}

// Machine describes where the figures were taken.
type Machine struct {
	CPU     string `json:"cpu"`
	Cores   int    `json:"cores"`
	Memory  string `json:"memory"`
	OS      string `json:"os"`
	Kernel  string `json:"kernel"`
	Go      string `json:"go"`
	Nginx   string `json:"nginx"`
	Redis   string `json:"redis"`
	Sharing string `json:"sharing"`
}

// Settings are the benchmark's own.
type Settings struct {
	DurationSeconds float64 `json:"durationSeconds"`
	Workers         int     `json:"workers"`
	Replicas        int     `json:"replicas"`
	LogLevel        string  `json:"logLevel"`
	RedisArgs       string  `json:"redisArgs,omitempty"`
}

// Latency is loadtest's percentiles in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
}

// Figure is one load's outcome.
type Figure struct {
	Rate     float64 `json:"rate"`
	Asked    float64 `json:"asked,omitempty"`
	Requests uint64  `json:"requests"`
	Errors   uint64  `json:"errors"`
	// Shortfall is loadtest's: an open-model run that reached less than
	// the rate it was asked, whose figures describe a lighter load.
	Shortfall bool `json:"shortfall,omitempty"`
	// Failed is why loadtest exited non-zero (a threshold it breached).
	Failed  string  `json:"loadtestFailed,omitempty"`
	Latency Latency `json:"latencyMs"`
}

// flaws says what makes f no valid figure for a target, "" when nothing
// does: a target is met only by runs with no errors (wrong answers end
// the benchmark) and, in the open model, at the rate they were asked.
func (f Figure) flaws() string {
	var why []string
	if f.Errors > 0 {
		why = append(why, report.Counted(f.Errors, "error", "errors"))
	}
	if f.Shortfall {
		why = append(why, fmt.Sprintf("short of the asked rate (%.0f of %.0f req/s)", f.Rate, f.Asked))
	}
	if f.Failed != "" {
		why = append(why, "loadtest failed: "+f.Failed)
	}
	return strings.Join(why, ", ")
}

// outcome is what a row of a loadtest run says after its figures: its
// errors, and its shortfall if it had one.
func (f Figure) outcome() string {
	out := "; " + report.Counted(f.Errors, "error", "errors")
	if f.Shortfall {
		out += ", short of the asked rate"
	}
	if f.Failed != "" {
		out += ", loadtest failed its thresholds"
	}
	return out
}

// valid tells whether every one of figs is a valid figure; when one is
// not, the result text of the target resting on them says why, after
// naming it (a name of "" is left out).
func valid(result *string, figs ...namedFigure) bool {
	ok := true
	for _, nf := range figs {
		if fl := nf.f.flaws(); fl != "" {
			ok = false
			if nf.name != "" {
				fl = nf.name + ": " + fl
			}
			*result += "; " + fl
		}
	}
	return ok
}

// namedFigure is a figure a target rests on, with what the target's
// result calls it.
type namedFigure struct {
	name string
	f    Figure
}

// Ceilings are what the machine can do without the service.
type Ceilings struct {
	NginxStatic Figure  `json:"nginxStatic"`
	NginxProxy  Figure  `json:"nginxProxy"`
	RedisGet    float64 `json:"redisBenchmarkGet"`
	// NginxProxyHalf is the proxy ceiling loaded as Profile.Half is (same
	// rate, loadtest's open model): absent from runs before it was measured.
	NginxProxyHalf *Figure `json:"nginxProxyHalfRate,omitempty"`
}

// Profile holds the GET /profile figures through nginx.
type Profile struct {
	// Max is wrk's closed model; Checked is loadtest's, every answer
	// checked, which its own CPU bounds lower.
	Max     Figure `json:"max"`
	Checked Figure `json:"maxCheckedByLoadtest"`
	Half    Figure `json:"halfRate"`
	// ShareOfProxy and ShareOfStatic are Max.Rate over the ceilings.
	ShareOfProxy            float64 `json:"shareOfProxyCeiling"`
	ShareOfStatic           float64 `json:"shareOfNginxAlone"`
	ReplicaCPUMicros        float64 `json:"replicaCpuMicrosPerRequest"`
	NginxCPUMicros          float64 `json:"nginxCpuMicrosPerRequest"`
	RedisCPUMicros          float64 `json:"redisCpuMicrosPerRequest"`
	RedisCommandsPerRequest float64 `json:"redisCommandsPerRequest"`
	// RedisBackgroundPerRequest sums the commands too rare to be part of a
	// request (the replicas' probes), per request.
	RedisBackgroundPerRequest float64            `json:"redisBackgroundCommandsPerRequest"`
	RedisCommands             map[string]float64 `json:"redisCommands"`
	ReplicaShare              []Share            `json:"replicaShare"`
}

// Reference is the featureless gin + go-redis handler (one Redis GET per
// GET /profile, no logging, no metrics: loadtest/bench/featureless),
// loaded in the same run as GET /profile is with wrk, behind its own nginx
// with the same settings and as many processes as there are replicas.
type Reference struct {
	Max Figure `json:"max"`
	// Half is loaded as Profile.Half is: absent from runs before it was
	// measured.
	Half      *Figure `json:"halfRate,omitempty"`
	Processes int     `json:"processes"`
	// ShareOfProxy is Max.Rate over the proxy ceiling.
	ShareOfProxy            float64 `json:"shareOfProxyCeiling"`
	CPUMicros               float64 `json:"cpuMicrosPerRequest"`
	NginxCPUMicros          float64 `json:"nginxCpuMicrosPerRequest"`
	RedisCPUMicros          float64 `json:"redisCpuMicrosPerRequest"`
	RedisCommandsPerRequest float64 `json:"redisCommandsPerRequest"`
}

// Share is one replica's share of the answers.
type Share struct {
	Instance string  `json:"instance"`
	Share    float64 `json:"share"`
}

// Storm compares reads beside a login storm with quiet reads.
type Storm struct {
	Reads    Figure  `json:"reads"`
	Logins   Figure  `json:"logins"`
	P99Ratio float64 `json:"readP99OverQuiet"`
}

// Journey is a mixed or churn run.
type Journey struct {
	Scenario string `json:"scenario"`
	// Users is how many users shared the run: absent from runs before
	// the benchmark chose it from the rate.
	Users int          `json:"users,omitempty"`
	All   Figure       `json:"all"`
	Kinds []KindFigure `json:"kinds"`
}

// completed tells whether some session of the run reached its logout,
// the last step of every journey.
func (j Journey) completed() bool {
	return slices.ContainsFunc(j.Kinds, func(k KindFigure) bool { return k.Kind == "logout" })
}

// KindFigure is one kind of request within a journey.
type KindFigure struct {
	Kind    string  `json:"kind"`
	Rate    float64 `json:"rate"`
	Latency Latency `json:"latencyMs"`
}

// Sessions holds the figures that depend on how many sessions live.
type Sessions struct {
	SmallCount      int     `json:"smallCount"`
	LookupSmall     Figure  `json:"lookupSmall"`
	MemoryCount     int     `json:"memoryCount"`
	BytesPerSession float64 `json:"redisBytesPerSession"`
	LargeCount      int     `json:"largeCount,omitempty"`
	LookupLarge     Figure  `json:"lookupLarge"`
}

// Target is one goal and whether this run met it.
type Target struct {
	Name   string `json:"name"`
	Goal   string `json:"goal"`
	Result string `json:"result"`
	Met    bool   `json:"met"`
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// judge sets the targets from the figures.
func (r *Results) judge() {
	add := func(name, goal, result string, met bool) {
		r.Targets = append(r.Targets, Target{name, goal, result, met})
	}
	r.Profile.ShareOfProxy = ratio(r.Profile.Max.Rate, r.Ceilings.NginxProxy.Rate)
	r.Profile.ShareOfStatic = ratio(r.Profile.Max.Rate, r.Ceilings.NginxStatic.Rate)
	p := r.Profile
	px := p.ShareOfProxy
	add("GET /profile through nginx vs the proxy ceiling", "≥ 45%", fmt.Sprintf("%.0f%% (%.0f of %.0f req/s)", 100*px, p.Max.Rate, r.Ceilings.NginxProxy.Rate), px >= 0.45)
	add("replica CPU per GET /profile (LOG_LEVEL=info)", "≤ 40 µs", fmt.Sprintf("%.1f µs", p.ReplicaCPUMicros), p.ReplicaCPUMicros > 0 && p.ReplicaCPUMicros <= 40)
	if f := r.Featureless; f != nil {
		f.ShareOfProxy = ratio(f.Max.Rate, r.Ceilings.NginxProxy.Rate)
		add("GET /profile vs the featureless gin + go-redis handler, same run", "rate ≥ the handler's",
			fmt.Sprintf("rate %.2f× (%.0f vs %.0f req/s); CPU %.2f× (%.1f vs %.1f µs)",
				ratio(p.Max.Rate, f.Max.Rate), p.Max.Rate, f.Max.Rate, ratio(p.ReplicaCPUMicros, f.CPUMicros), p.ReplicaCPUMicros, f.CPUMicros),
			f.Max.Rate > 0 && p.Max.Rate >= f.Max.Rate)
	}
	half := fmt.Sprintf("%.2f ms at %.0f req/s", p.Half.Latency.P99, p.Half.Rate)
	halfValid := valid(&half, namedFigure{"", p.Half})
	add("p99 at half the rate loadtest reached (open model)", "< 5 ms", half+r.halfReferences(), halfValid && p.Half.Requests > 0 && p.Half.Latency.P99 < 5)
	add("Redis commands per GET /profile", "1 (one round trip)", fmt.Sprintf("%.3f", p.RedisCommandsPerRequest), p.RedisCommandsPerRequest > 0.99 && p.RedisCommandsPerRequest < 1.01)
	add(fmt.Sprintf("Redis memory per live session at %d sessions, %d per user", r.Sessions.MemoryCount, clonedSessionsPerUser), "< 300 bytes", fmt.Sprintf("%.0f bytes", r.Sessions.BytesPerSession), r.Sessions.BytesPerSession > 0 && r.Sessions.BytesPerSession < 300)
	if r.Sessions.LargeCount > 0 {
		s := r.Sessions
		lr := ratio(s.LookupLarge.Latency.P50, s.LookupSmall.Latency.P50)
		result := fmt.Sprintf("%+.0f%% (%.3f vs %.3f ms)", 100*(lr-1), s.LookupLarge.Latency.P50, s.LookupSmall.Latency.P50)
		ok := valid(&result, namedFigure{fmt.Sprintf("lookup among %d", s.LargeCount), s.LookupLarge}, namedFigure{fmt.Sprintf("lookup among %d", s.SmallCount), s.LookupSmall})
		add(fmt.Sprintf("lookup p50 at %d sessions vs %d", s.LargeCount, s.SmallCount), "within 10%", result, ok && lr >= 0.90 && lr <= 1.10)
	}
	storm := fmt.Sprintf("%.1f× (%.2f vs %.2f ms)", r.Storm.P99Ratio, r.Storm.Reads.Latency.P99, p.Half.Latency.P99)
	stormValid := valid(&storm, namedFigure{"reads beside the storm", r.Storm.Reads}, namedFigure{"quiet reads", p.Half})
	add("read p99 beside a login storm vs quiet", "< 3×", storm, stormValid && r.Storm.P99Ratio > 0 && r.Storm.P99Ratio < 3)
}

// halfReferences names the p99s that the same open-model load got from
// the featureless handler and the proxy ceiling, where they were measured:
// what bounds the p99 target on this machine.
func (r *Results) halfReferences() string {
	var refs []string
	ref := func(name string, f Figure) string {
		out := fmt.Sprintf("%s %.2f ms", name, f.Latency.P99)
		if fl := f.flaws(); fl != "" {
			out += " (" + fl + ")"
		}
		return out
	}
	if f := r.Featureless; f != nil && f.Half != nil {
		refs = append(refs, ref("the featureless handler", *f.Half))
	}
	if h := r.Ceilings.NginxProxyHalf; h != nil {
		refs = append(refs, ref("the proxy ceiling", *h))
	}
	if len(refs) == 0 {
		return ""
	}
	return "; same load: " + strings.Join(refs, ", ")
}

// Markdown writes the run as the table the README shows.
func (r *Results) Markdown(w io.Writer) {
	fmt.Fprintf(w, "Measured %s on %s (%d cores, %s), commit %s; load average %s at the start, %s at the end (machine %s). Each load ran %.0f s; nginx, %d replicas (LOG_LEVEL=info), Redis and the load generator share the cores.\n\n",
		r.Date.Format("2006-01-02 15:04 UTC"), r.Machine.CPU, r.Machine.Cores, r.Machine.Memory, r.Commit,
		r.LoadAverageStart, r.LoadAverageEnd, r.Machine.Sharing, r.Settings.DurationSeconds, r.Settings.Replicas)
	if r.Settings.RedisArgs != "" {
		fmt.Fprintf(w, "Redis ran with `%s`.\n\n", r.Settings.RedisArgs)
	}
	if strings.HasPrefix(r.Machine.Sharing, "busy") {
		fmt.Fprintln(w, "**Taken while other work kept the machine busy: these figures are far below a quiet run's and show only that the benchmark works; `make bench` on a quiet machine gives the real ones.**")
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "| measurement | result | share of ceiling |")
	fmt.Fprintln(w, "|---|---|---|")
	c := r.Ceilings
	row := func(name string, f Figure, share string) {
		fmt.Fprintf(w, "| %s | %.0f req/s, p50 %.2f ms, p99 %.2f ms | %s |\n", name, f.Rate, f.Latency.P50, f.Latency.P99, share)
	}
	// loadtest's runs, unlike wrk's (which are no figure at all with an
	// answer that is not 2xx), say their errors.
	checkedRow := func(name string, f Figure) {
		fmt.Fprintf(w, "| %s | %.0f req/s, p50 %.2f ms, p99 %.2f ms%s |  |\n", name, f.Rate, f.Latency.P50, f.Latency.P99, f.outcome())
	}
	row("ceiling: nginx answering a fixed 200 itself (wrk)", c.NginxStatic, "")
	row("ceiling: nginx (production settings) → trivial upstream (wrk)", c.NginxProxy, fmt.Sprintf("%.0f%% of nginx alone", 100*ratio(c.NginxProxy.Rate, c.NginxStatic.Rate)))
	fmt.Fprintf(w, "| ceiling: `redis-benchmark` GET, 50 clients | %.0f req/s | |\n", c.RedisGet)
	p := r.Profile
	row(fmt.Sprintf("`GET /profile` through nginx, %d replicas, closed model (wrk, %d connections)", r.Settings.Replicas, r.Settings.Workers), p.Max,
		fmt.Sprintf("%.0f%% of the proxy ceiling, %.0f%% of nginx alone", 100*ratio(p.Max.Rate, c.NginxProxy.Rate), 100*ratio(p.Max.Rate, c.NginxStatic.Rate)))
	if f := r.Featureless; f != nil {
		row(fmt.Sprintf("reference: a featureless gin + go-redis handler (one `GET`, no log, no metrics), same nginx settings, %d processes (wrk, %d connections)", f.Processes, r.Settings.Workers), f.Max,
			fmt.Sprintf("%.0f%% of the proxy ceiling; `GET /profile` reached %.2f× its rate", 100*ratio(f.Max.Rate, c.NginxProxy.Rate), ratio(p.Max.Rate, f.Max.Rate)))
	}
	if p.Checked.Requests > 0 {
		checkedRow(fmt.Sprintf("the same with `loadtest` checking every answer (%d workers): bounded by its own CPU", r.Settings.Workers), p.Checked)
	}
	half := func(name string, f Figure) {
		fmt.Fprintf(w, "| %s | %.0f of %.0f req/s asked, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms%s | |\n", name, f.Rate, f.Asked, f.Latency.P50, f.Latency.P99, f.Latency.P999, f.outcome())
	}
	half("`GET /profile` at half the rate `loadtest` reached, open model (`loadtest`)", p.Half)
	if f := r.Featureless; f != nil && f.Half != nil {
		half("the featureless handler, the same load", *f.Half)
	}
	if h := c.NginxProxyHalf; h != nil {
		half("the proxy ceiling (`GET /` of the trivial upstream), the same load", *h)
	}
	fmt.Fprintf(w, "| CPU per `GET /profile` | replicas %.1f µs, nginx %.1f µs, Redis %.1f µs | |\n", p.ReplicaCPUMicros, p.NginxCPUMicros, p.RedisCPUMicros)
	if f := r.Featureless; f != nil {
		fmt.Fprintf(w, "| CPU per request of the featureless handler | its processes %.1f µs, nginx %.1f µs, Redis %.1f µs; Redis commands %.3f | |\n", f.CPUMicros, f.NginxCPUMicros, f.RedisCPUMicros, f.RedisCommandsPerRequest)
	}
	fmt.Fprintf(w, "| Redis commands per `GET /profile` | %.3f (%s; the replicas' background commands add %.4f) | |\n", p.RedisCommandsPerRequest, commandList(p.RedisCommands), p.RedisBackgroundPerRequest)
	fmt.Fprintf(w, "| reads at half the rate `loadtest` reached beside a login storm | p99 %.2f ms (%.1f× quiet)%s; logins %.0f/s, p99 %.0f ms, %d refused or failed | |\n",
		r.Storm.Reads.Latency.P99, r.Storm.P99Ratio, r.Storm.Reads.outcome(), r.Storm.Logins.Rate, r.Storm.Logins.Latency.P99, r.Storm.Logins.Errors)
	for _, j := range r.Journeys {
		var kinds []string
		for _, k := range j.Kinds {
			kinds = append(kinds, fmt.Sprintf("%s p99 %.1f ms", k.Kind, k.Latency.P99))
		}
		users := ""
		if j.Users > 0 {
			users = fmt.Sprintf(", %d users", j.Users)
		}
		done := ""
		if !j.completed() {
			done = "; no session reached its logout"
		}
		fmt.Fprintf(w, "| `%s` at %.0f req/s (open model%s) | %s%s%s | |\n", j.Scenario, j.All.Rate, users, strings.Join(kinds, ", "), j.All.outcome(), done)
	}
	s := r.Sessions
	fmt.Fprintf(w, "| Redis memory per live session at %d sessions, %d per user | %.0f bytes | |\n", s.MemoryCount, clonedSessionsPerUser, s.BytesPerSession)
	fmt.Fprintf(w, "| lookup among %d sessions | %.0f req/s, p50 %.3f ms, p99 %.2f ms%s | |\n", s.SmallCount, s.LookupSmall.Rate, s.LookupSmall.Latency.P50, s.LookupSmall.Latency.P99, s.LookupSmall.outcome())
	if s.LargeCount > 0 {
		fmt.Fprintf(w, "| lookup among %d sessions | %.0f req/s, p50 %.3f ms, p99 %.2f ms%s | |\n", s.LargeCount, s.LookupLarge.Rate, s.LookupLarge.Latency.P50, s.LookupLarge.Latency.P99, s.LookupLarge.outcome())
	}
	if r.Docker != nil {
		checkedRow("`GET /profile` through the compose stack (bounded by Docker's port proxy)", *r.Docker)
	}
	fmt.Fprintln(w, "\n| target | goal | this run | met |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, t := range r.Targets {
		met := "yes"
		if !t.Met {
			met = "no"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", t.Name, t.Goal, t.Result, met)
	}
}

func commandList(m map[string]float64) string {
	var parts []string
	for name, v := range m {
		if v >= 0.001 {
			parts = append(parts, fmt.Sprintf("%s %.3f", strings.ToUpper(name), v))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// Markers around the table in README.md that -readme replaces.
const (
	readmeStart = "<!-- bench:start -->"
	readmeEnd   = "<!-- bench:end -->"
)

// replaceBetween puts table between the markers of doc.
func replaceBetween(doc, table string) (string, error) {
	i := strings.Index(doc, readmeStart)
	j := strings.Index(doc, readmeEnd)
	if i < 0 || j < i {
		return "", errors.New("README.md has no bench markers")
	}
	return doc[:i+len(readmeStart)] + "\n" + table + doc[j:], nil
}

func (r *Results) write(o options, stdout io.Writer) error {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	base := filepath.Join(o.out, r.Date.Format("2006-01-02"))
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(base+".json", append(js, '\n'), 0o644); err != nil {
		return err
	}
	var md strings.Builder
	r.Markdown(&md)
	if err := os.WriteFile(base+".md", []byte(md.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%s\nwrote %s.json and %s.md\n", md.String(), base, base)
	if !o.readme {
		return nil
	}
	path := filepath.Join(o.repo, "README.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := replaceBetween(string(doc), md.String())
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

func describeMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	m.CPU = firstMatch("/proc/cpuinfo", "model name")
	if kb := firstMatch("/proc/meminfo", "MemTotal"); kb != "" {
		var n float64
		fmt.Sscanf(kb, "%f", &n)
		m.Memory = fmt.Sprintf("%.0f GiB", n/1024/1024)
	}
	m.OS = strings.Trim(firstMatch("/etc/os-release", "PRETTY_NAME="), `"`)
	m.Kernel = command("uname", "-r")
	m.Nginx = strings.TrimPrefix(command("nginx", "-v"), "nginx version: ")
	m.Redis = command("redis-server", "--version")
	return m
}

// firstMatch returns what follows the first line of path starting with key
// (and a colon, if the file uses one).
func firstMatch(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key); ok {
			return strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(v), ":"))
		}
	}
	return ""
}

func command(name string, args ...string) string {
	out, _ := exec.Command(name, args...).CombinedOutput()
	return strings.TrimSpace(string(out))
}

func gitCommit(repo string) string {
	out, err := exec.Command("git", "-C", repo, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// sharing says whether other work kept the machine busy, from the load
// average at the start.
func sharing(load string, cores int) string {
	var one float64
	if _, err := fmt.Sscanf(load, "%f", &one); err != nil {
		return "unknown"
	}
	if one > 0.5*float64(cores) {
		return fmt.Sprintf("busy with other work: load average %.1f on %d cores before the first load", one, cores)
	}
	return "quiet"
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
