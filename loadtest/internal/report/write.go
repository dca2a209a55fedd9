package report

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"redis-session-app/loadtest/internal/scenario"
)

// FormatMs writes a latency in milliseconds with a precision that suits
// its size.
func FormatMs(v float64) string {
	switch {
	case v < 1:
		return fmt.Sprintf("%.0fµs", v*1000)
	case v < 10:
		return fmt.Sprintf("%.2fms", v)
	case v < 100:
		return fmt.Sprintf("%.1fms", v)
	case v < 10000:
		return fmt.Sprintf("%.0fms", v)
	}
	return fmt.Sprintf("%.1fs", v/1000)
}

// Headline says in one line what was asked and what was achieved.
func (s *Summary) Headline() string {
	load := "closed model, " + Counted(uint64(s.Workers), "worker", "workers")
	if s.Model == "open" {
		load = fmt.Sprintf("open model, %s", s.Schedule)
	}
	line := fmt.Sprintf("scenario %s against %s (%s, %s): %s in %.1fs, achieved %s/s",
		s.Scenario, s.Target, load, Counted(uint64(s.Users), "user", "users"), Counted(s.Requests, "request", "requests"), s.ElapsedSeconds, formatRate(s.AchievedRate))
	if s.AskedRate != nil {
		line += fmt.Sprintf(" of %s/s asked", formatRate(*s.AskedRate))
	}
	return line
}

// formatRate writes a rate in requests per second with the digits a low
// one needs: 1.5/s and 0.5/s are not 2/s and 0/s.
func formatRate(v float64) string {
	switch {
	case v >= 10 || v == 0:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 0.1:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'g', 2, 64)
}

// ShortfallWarning is the loud warning of an open-model run that delivered
// less than it was asked to, or "" when it did not.
func (s *Summary) ShortfallWarning() string {
	if !s.Shortfall {
		return ""
	}
	return fmt.Sprintf("WARNING: achieved %s req/s, only %.1f%% of the %s req/s asked: the generator could not keep the schedule "+
		"(CPU, connections or -max-in-flight), so these figures describe a lighter load than the one asked for (-strict makes this fail the run)",
		formatRate(s.AchievedRate), 100*s.AchievedRate/max(*s.AskedRate, 1e-9), formatRate(*s.AskedRate))
}

// LateWarning is the loud warning of an open-model run in which the
// generator sent requests more than LateBound after they were due, or ""
// when it did not.
func (s *Summary) LateWarning() string {
	if s.LateSends == 0 {
		return ""
	}
	return fmt.Sprintf("WARNING: %s left more than %s after %s due, up to %s late: every worker was busy "+
		"(-max-in-flight) or the generator was short of CPU; latencies count from when requests were due, so they include that wait",
		requests(s.LateSends), LateBound, plural(s.LateSends, "it was", "they were"), FormatMs(s.MaxSendDelayMs))
}

// requests is n requests, in words: "1 request", "2 requests".
func requests(n uint64) string {
	return fmt.Sprintf("%d %s", n, plural(n, "request", "requests"))
}

// Counted is n with the noun that goes with it: "1 user", "2 users".
func Counted(n uint64, one, many string) string {
	return strconv.FormatUint(n, 10) + " " + plural(n, one, many)
}

// plural is one when n is 1, else many.
func plural(n uint64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// InterruptedWarning is the loud warning of a run that a signal stopped,
// or "" for one that ran whole.
func (s *Summary) InterruptedWarning() string {
	if !s.Interrupted {
		return ""
	}
	return fmt.Sprintf("WARNING: interrupted after %.1fs: the report covers only the part that ran, and the run fails", s.ElapsedSeconds)
}

// LoginLimitHint says why logins were answered 429 and what to change,
// or "" when none was. A target's login limits, not its capacity, refuse
// them: with the defaults a load test's logins are mostly refusals, and
// the report would otherwise show only a high error rate.
func (s *Summary) LoginLimitHint() string {
	k, ok := s.kind(scenario.Login)
	if !ok || k.RateLimited == 0 {
		return ""
	}
	hint := fmt.Sprintf("HINT: %d of %d logins were answered 429 Too Many Requests: the target's login rate limits refused them. "+
		"Each replica allows LOGIN_LIMIT_PER_USER logins per account (default 10/m; this run's %s share all of its logins) "+
		"and LOGIN_LIMIT_PER_IP per client address (default 30/m; all of this generator's requests come from one), "+
		"and the stack's nginx, when in front, allows one address 50 a second on /auth/ (burst 500): on a test deployment raise both replica limits "+
		"(LOGIN_LIMIT_PER_USER=100000/m LOGIN_LIMIT_PER_IP=100000/m make up), or spread the logins over more -users",
		k.RateLimited, k.Requests, Counted(uint64(s.Users), "user", "users"))
	if s.Model == "closed" {
		hint += "; in the closed model a refused login comes back at once and its worker sends the next, " +
			"so the rates and latencies above are mostly the limiter's"
	}
	return hint
}

// Warnings lists the loud warnings of the run, and the hint of a run
// that met the login limits, for the terminal and the page.
func (s *Summary) Warnings() []string {
	var ws []string
	for _, w := range []string{s.InterruptedWarning(), s.ShortfallWarning(), s.LateWarning(), s.LoginLimitHint()} {
		if w != "" {
			ws = append(ws, w)
		}
	}
	return ws
}

// WriteText writes the report as tables for a terminal.
func (s *Summary) WriteText(w io.Writer) error {
	fmt.Fprintln(w, s.Headline())
	for _, warn := range s.Warnings() {
		fmt.Fprintln(w, warn)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\trequests\treq/s\terrors\twrong\tp50\tp90\tp99\tp99.9\tmax\t")
	for _, k := range append(slices.Clone(s.Kinds), s.All) {
		l := k.Latency
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t\n", k.Kind, k.Requests, k.Rate, k.Errors, k.Wrong,
			FormatMs(l.P50), FormatMs(l.P90), FormatMs(l.P99), FormatMs(l.P999), FormatMs(l.Max))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	var codes []string
	for _, c := range slices.Sorted(maps.Keys(s.Statuses)) {
		codes = append(codes, fmt.Sprintf("%s: %d", c, s.Statuses[c]))
	}
	fmt.Fprintf(w, "\nstatus codes: %s\n", strings.Join(codes, ", "))
	fmt.Fprintln(w, "share of answers by replica (X-Instance):")
	for _, sh := range s.Instances {
		fmt.Fprintf(w, "  %-24s %10d  %5.1f%%\n", sh.Instance, sh.Requests, 100*sh.Share)
	}
	if s.UserWaits > 0 {
		fmt.Fprintf(w, "%s waited for an idle user (%s counts in %s latency): raise -users\n",
			requests(s.UserWaits), plural(s.UserWaits, "its wait", "their wait"), plural(s.UserWaits, "its", "their"))
	}
	writeDetails(w, "errors", s.ErrorDetails)
	writeDetails(w, "WRONG ANSWERS", s.WrongDetails)
	if len(s.Thresholds) > 0 {
		fmt.Fprintln(w, "thresholds:")
		for _, c := range s.Thresholds {
			mark := "ok"
			if !c.OK {
				mark = "BREACHED"
			}
			fmt.Fprintf(w, "  %-8s %s: %s (limit %s)\n", mark, c.Name, c.Value, c.Limit)
		}
	}
	return nil
}

func writeDetails(w io.Writer, title string, ds []Detail) {
	if len(ds) == 0 {
		return
	}
	fmt.Fprintf(w, "%s:\n", title)
	for _, d := range ds[:min(len(ds), 10)] {
		fmt.Fprintf(w, "  %8d  %s\n", d.Count, d.Detail)
	}
}

// WriteJSON writes the report as one indented JSON document.
func (s *Summary) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// Progress is the state of a run at one moment, for the progress line.
type Progress struct {
	Elapsed  time.Duration
	Requests uint64
	// Answers, Rate and P99 are over the answers that came in since the
	// previous progress line.
	Answers int
	Rate    float64
	P99     time.Duration
	Errors  uint64
	Wrong   uint64
	// InFlight counts the requests that left and are not answered yet;
	// WaitingForUser the steps of mixed and churn that wait for an idle
	// user to send them, which have not left.
	InFlight       int64
	WaitingForUser int64
}

// Progress measures the run so far, and its rate and p99 over the answers
// that came in since the previous call (or the start).
//
// The interval's answers are those added since then, however long ago they
// were sent: counting by send time instead left out the slow answers a
// stalled target gives and showed it as idle and fast. Each call reads only
// the samples added since the previous one.
func (c *Collector) Progress(now time.Time) Progress {
	p := Progress{Elapsed: now.Sub(c.start)}
	var recent []time.Duration
	for _, k := range c.kinds {
		p.Requests += uint64(len(k.samples))
		p.Errors += k.errors
		p.Wrong += k.wrong
		for _, s := range k.samples[k.progressed:] {
			recent = append(recent, s.latency)
		}
		k.progressed = len(k.samples)
	}
	slices.Sort(recent)
	p.Answers = len(recent)
	p.P99 = Percentile(recent, 99)
	if d := p.Elapsed - c.progressAt; d > 0 {
		p.Rate = float64(len(recent)) / d.Seconds()
	}
	c.progressAt = p.Elapsed
	return p
}

// String writes p as one line.
func (p Progress) String() string {
	// No answer in the interval has no p99; 0µs would read as fast.
	p99 := "-"
	if p.Answers > 0 {
		p99 = FormatMs(ms(p.P99))
	}
	line := fmt.Sprintf("%6.1fs  %9d requests  %8.0f req/s  p99 %-8s  errors %d  wrong %d  in flight %d",
		p.Elapsed.Seconds(), p.Requests, p.Rate, p99, p.Errors, p.Wrong, p.InFlight)
	if p.WaitingForUser > 0 {
		line += fmt.Sprintf("  waiting for a user %d", p.WaitingForUser)
	}
	return line
}
