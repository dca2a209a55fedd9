// Package report turns the answers of a load test into figures: requests
// per second achieved against those asked, exact latency percentiles per
// kind of request, status counts, wrong answers, the share each replica
// served, and time series for plots. It also judges the figures against
// thresholds, and writes them as a terminal table, JSON or one HTML page.
package report

import (
	"cmp"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"redis-session-app/loadtest/internal/scenario"
)

// Record is one answered (or failed) request.
type Record struct {
	Kind scenario.Kind
	// At is when the request left, which rates and the time series count.
	At time.Time
	// Latency runs to the answer from when the request was due in the open
	// model, so that it includes any wait to leave (for a worker, the CPU
	// or an idle user), and from when vegeta picked it up in the closed one.
	Latency time.Duration
	// SendDelay is how long after it was due the request left (open model).
	SendDelay time.Duration
	Status    int // 0: no HTTP answer
	Outcome   scenario.Outcome
	Instance  string // the X-Instance header, empty when absent
}

// maxDetails bounds how many distinct error and wrong-answer descriptions
// are kept: a broken target must not make the report grow without end.
const maxDetails = 20

// Collector gathers records. It is not safe for concurrent use; the load
// generator feeds it from one goroutine.
type Collector struct {
	start     time.Time
	kinds     map[scenario.Kind]*kindData
	statuses  map[int]uint64
	instances map[string]uint64
	errors    map[string]uint64
	wrong     map[string]uint64
	last      time.Duration // latest send time, from start
	maxDelay  time.Duration // longest SendDelay
	late      uint64        // requests with a SendDelay above LateBound
	// progressAt is when the last progress line was made, from start.
	progressAt time.Duration
}

type kindData struct {
	// samples are in the order the answers came in (that of Add).
	samples []sample
	errors  uint64
	wrong   uint64
	// limited counts the answers 429 Too Many Requests.
	limited uint64
	// progressed counts the samples the progress lines have covered.
	progressed int
}

// sample is a request's send time (from the start), its latency and
// whether it failed (an error or a wrong answer).
type sample struct {
	at, latency time.Duration
	failed      bool
}

// NewCollector returns a collector for a run that started at start.
func NewCollector(start time.Time) *Collector {
	return &Collector{
		start:     start,
		kinds:     map[scenario.Kind]*kindData{},
		statuses:  map[int]uint64{},
		instances: map[string]uint64{},
		errors:    map[string]uint64{},
		wrong:     map[string]uint64{},
	}
}

// Add counts one record.
func (c *Collector) Add(r Record) {
	k := c.kinds[r.Kind]
	if k == nil {
		k = &kindData{}
		c.kinds[r.Kind] = k
	}
	at := r.At.Sub(c.start)
	k.samples = append(k.samples, sample{at, r.Latency, r.Outcome.Verdict != scenario.OK})
	c.last = max(c.last, at)
	c.maxDelay = max(c.maxDelay, r.SendDelay)
	if r.SendDelay > LateBound {
		c.late++
	}
	c.statuses[r.Status]++
	if r.Status == http.StatusTooManyRequests {
		k.limited++
	}
	if r.Status != 0 {
		c.instances[r.Instance]++
	}
	switch r.Outcome.Verdict {
	case scenario.Error:
		k.errors++
		countDetail(c.errors, string(r.Kind)+": "+r.Outcome.Detail)
	case scenario.Wrong:
		k.wrong++
		countDetail(c.wrong, string(r.Kind)+": "+r.Outcome.Detail)
	}
}

func countDetail(m map[string]uint64, d string) {
	if _, ok := m[d]; ok || len(m) < maxDetails {
		m[d]++
		return
	}
	m["(other)"]++
}

// Count is the number of records so far.
func (c *Collector) Count() uint64 {
	var n uint64
	for _, k := range c.kinds {
		n += uint64(len(k.samples))
	}
	return n
}

// Run describes the load that was asked for.
type Run struct {
	Scenario string `json:"scenario"`
	Target   string `json:"target"`
	// Model is "open" (arrivals on a schedule) or "closed" (Workers users
	// who each wait for an answer).
	Model    string `json:"model"`
	Workers  int    `json:"workers,omitempty"`
	Schedule string `json:"schedule,omitempty"`
	Users    int    `json:"users"`
	// Expected returns how many arrivals the schedule makes in [0, d];
	// nil in the closed model.
	Expected func(d time.Duration) float64 `json:"-"`
	// Rate returns the asked rate at d; nil in the closed model.
	Rate func(d time.Duration) float64 `json:"-"`
}

// Summary is the whole report; its JSON form is what -json writes.
type Summary struct {
	Run
	Started        time.Time `json:"started"`
	ElapsedSeconds float64   `json:"elapsedSeconds"`
	Requests       uint64    `json:"requests"`
	Errors         uint64    `json:"errors"`
	Wrong          uint64    `json:"wrong"`
	ErrorRate      float64   `json:"errorRate"`
	// AskedRate is nil in the closed model.
	AskedRate    *float64 `json:"askedRate"`
	AchievedRate float64  `json:"achievedRate"`
	// Shortfall is set when the open model delivered less than
	// ShortfallRatio of the asked rate.
	Shortfall bool `json:"shortfall"`
	// MaxSendDelayMs is how late, at the most, the generator sent a request
	// after the schedule made it due; LateSends counts the requests sent
	// more than LateBound late. Latencies count from when requests were due.
	MaxSendDelayMs float64           `json:"maxSendDelayMs"`
	LateSends      uint64            `json:"lateSends"`
	Kinds          []KindSummary     `json:"kinds"`
	All            KindSummary       `json:"all"`
	Statuses       map[string]uint64 `json:"statuses"`
	Instances      []Share           `json:"instances"`
	// ErrorDetails and WrongDetails say what went wrong, most frequent first.
	ErrorDetails []Detail `json:"errorDetails"`
	WrongDetails []Detail `json:"wrongDetails"`
	// UserWaits counts requests that waited for an idle user.
	UserWaits uint64 `json:"userWaits"`
	// Interrupted is set when a signal stopped the sending before its
	// end: the figures cover only the part that ran, and the run fails.
	Interrupted bool    `json:"interrupted"`
	Thresholds  []Check `json:"thresholds"`
	Series      Series  `json:"series"`
}

// ShortfallRatio is the share of the asked rate below which a run is said
// to have fallen short.
const ShortfallRatio = 0.95

// LateBound is the send delay above which the report warns that the
// generator did not send on schedule.
const LateBound = 100 * time.Millisecond

// KindSummary holds the figures of one kind of request.
type KindSummary struct {
	Kind     scenario.Kind `json:"kind"`
	Requests uint64        `json:"requests"`
	Rate     float64       `json:"rate"`
	Errors   uint64        `json:"errors"`
	Wrong    uint64        `json:"wrong"`
	// RateLimited counts the answers 429 Too Many Requests, which Errors
	// holds too.
	RateLimited uint64  `json:"rateLimited"`
	Latency     Latency `json:"latencyMs"`
}

// Latency holds percentiles in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Share is how many answers one replica gave.
type Share struct {
	Instance string  `json:"instance"`
	Requests uint64  `json:"requests"`
	Share    float64 `json:"share"`
}

// Detail is one description of an error or a wrong answer and its count.
type Detail struct {
	Detail string `json:"detail"`
	Count  uint64 `json:"count"`
}

// Series holds the time series the HTML report plots, one point per bucket.
type Series struct {
	BucketSeconds float64 `json:"bucketSeconds"`
	// Start is each bucket's start, in seconds from the run's start, and
	// Width its length: BucketSeconds but for the last bucket, which ends
	// with the window and is between half a bucket and one and a half long.
	Start []float64 `json:"start"`
	Width []float64 `json:"widthSeconds"`
	// Asked is the asked rate at each bucket's middle (open model only).
	Asked []float64 `json:"asked,omitempty"`
	// Failed counts errors and wrong answers per second.
	Failed []float64    `json:"failedPerSecond"`
	Kinds  []KindSeries `json:"kinds"`
}

// KindSeries is the time series of one kind: its rate and its latency
// percentiles (milliseconds; nil where a bucket has no request).
type KindSeries struct {
	Kind scenario.Kind `json:"kind"`
	Rate []float64     `json:"rate"`
	P50  []*float64    `json:"p50"`
	P99  []*float64    `json:"p99"`
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of sorted by the
// nearest-rank method: the smallest value that at least p% of the values
// are at or below. It returns 0 for no values.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// The epsilon keeps 99.9% of 1000 at rank 999 although 99.9 has no
	// exact binary form.
	rank := int(math.Ceil(p/100*float64(len(sorted)) - 1e-9))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// Latencies returns the percentiles of unsorted latencies (which it sorts).
func Latencies(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return Latency{
		P50:  ms(Percentile(ds, 50)),
		P90:  ms(Percentile(ds, 90)),
		P99:  ms(Percentile(ds, 99)),
		P999: ms(Percentile(ds, 99.9)),
		Max:  ms(ds[len(ds)-1]),
		Mean: ms(sum / time.Duration(len(ds))),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Summarize computes the report of everything collected for run. window
// is how long the sending phase ran (the whole schedule or -duration, less
// when interrupted; when -max-requests ended it, the last answer in the
// closed model, 0 in the open one); achieved rates are over it, and it is
// never taken shorter than the last send. The asked rate is the
// schedule's over window as given (the last send when it is 0): a request
// that left a moment after the schedule's end stretches the time the
// requests took, not the schedule. userWaits is the scenario's count of
// requests that waited for a user.
func (c *Collector) Summarize(run Run, window time.Duration, userWaits uint64) *Summary {
	// Lists are empty rather than nil, so that a run without requests
	// writes [] in the JSON, which its readers (the page's script too)
	// can go through.
	s := &Summary{
		Run:        run,
		Started:    c.start,
		Kinds:      []KindSummary{},
		Statuses:   map[string]uint64{},
		Instances:  []Share{},
		UserWaits:  userWaits,
		Thresholds: []Check{},
	}
	asked := window
	if asked <= 0 {
		asked = c.last
	}
	// Dividing by the time of the last send instead would make a sparse
	// run's rate that of its first few milliseconds.
	window = max(window, c.last)
	if window <= 0 {
		window = time.Millisecond
	}
	s.ElapsedSeconds = window.Seconds()

	var (
		all     []time.Duration
		limited uint64
	)
	for _, k := range slices.Sorted(maps.Keys(c.kinds)) {
		d := c.kinds[k]
		lat := make([]time.Duration, len(d.samples))
		for i, smp := range d.samples {
			lat[i] = smp.latency
		}
		all = append(all, lat...)
		ks := KindSummary{
			Kind:        k,
			Requests:    uint64(len(d.samples)),
			Rate:        float64(len(d.samples)) / window.Seconds(),
			Errors:      d.errors,
			Wrong:       d.wrong,
			RateLimited: d.limited,
			Latency:     Latencies(lat),
		}
		s.Kinds = append(s.Kinds, ks)
		s.Requests += ks.Requests
		s.Errors += ks.Errors
		s.Wrong += ks.Wrong
		limited += ks.RateLimited
	}
	slices.SortFunc(s.Kinds, func(a, b KindSummary) int { return cmp.Compare(kindOrder(a.Kind), kindOrder(b.Kind)) })
	s.All = KindSummary{
		Kind: "all", Requests: s.Requests, Rate: float64(s.Requests) / window.Seconds(),
		Errors: s.Errors, Wrong: s.Wrong, Latency: Latencies(all), RateLimited: limited,
	}
	if s.Requests > 0 {
		s.ErrorRate = float64(s.Errors) / float64(s.Requests)
	}
	s.AchievedRate = s.All.Rate
	s.MaxSendDelayMs, s.LateSends = ms(c.maxDelay), c.late
	if run.Expected != nil {
		if asked <= 0 {
			asked = window
		}
		expected := finite(run.Expected(asked))
		rate := finite(expected / asked.Seconds())
		s.AskedRate = &rate
		// Arrivals are whole: a schedule of 1.5 in the window makes one.
		s.Shortfall = s.Requests > 0 && float64(s.Requests) < ShortfallRatio*math.Floor(expected+1e-9)
	}

	for code, n := range c.statuses {
		name := strconv.Itoa(code)
		if code == 0 {
			name = "no answer"
		}
		s.Statuses[name] = n
	}
	var answered uint64
	for _, n := range c.instances {
		answered += n
	}
	for _, id := range slices.Sorted(maps.Keys(c.instances)) {
		name := id
		if name == "" {
			name = "(no X-Instance)"
		}
		s.Instances = append(s.Instances, Share{name, c.instances[id], float64(c.instances[id]) / float64(answered)})
	}
	s.ErrorDetails = details(c.errors)
	s.WrongDetails = details(c.wrong)
	s.Series = c.series(run, window)
	return s
}

// finite bounds a figure that comes from the run's schedule: JSON has no
// infinity or NaN, and one of them would leave no report at all. The flags
// bound the rates already; this keeps the writers safe from any Run.
func finite(v float64) float64 {
	switch {
	case math.IsNaN(v):
		return 0
	case math.IsInf(v, 0):
		return math.Copysign(math.MaxFloat64, v)
	}
	return v
}

func kindOrder(k scenario.Kind) int {
	if i := slices.Index(scenario.Kinds, k); i >= 0 {
		return i
	}
	return len(scenario.Kinds)
}

func details(m map[string]uint64) []Detail {
	ds := make([]Detail, 0, len(m))
	for d, n := range m {
		ds = append(ds, Detail{d, n})
	}
	slices.SortFunc(ds, func(a, b Detail) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Detail, b.Detail))
	})
	return ds
}

// minBuckets is how many points a run's plots aim for at the least: one
// second buckets give a run of a second or two a single point, which
// draws no line.
const minBuckets = 30

// shortBuckets are the widths a run shorter than minBuckets seconds may
// get, widest first; none is under 10ms, which would hold a request or
// two at low rates.
var shortBuckets = []time.Duration{
	500 * time.Millisecond, 200 * time.Millisecond, 100 * time.Millisecond,
	50 * time.Millisecond, 20 * time.Millisecond, 10 * time.Millisecond,
}

// BucketFor picks the width of the time series' buckets: one second, or
// wider so that a long run has at most about 150 points; for a run shorter
// than minBuckets seconds the widest of shortBuckets that gives it
// minBuckets points, and 10ms for one too short for that.
func BucketFor(window time.Duration) time.Duration {
	if window < minBuckets*time.Second {
		for _, b := range shortBuckets {
			if window/b >= minBuckets {
				return b
			}
		}
		return shortBuckets[len(shortBuckets)-1]
	}
	b := time.Second
	for window/b > 150 {
		b *= 2
	}
	return b
}

func (c *Collector) series(run Run, window time.Duration) Series {
	bucket := BucketFor(window)
	// The buckets cover the window; the last one may be partial, and rates
	// in it are over its real length. One narrower than half a bucket
	// joins the one before: a sliver holding a request or two would plot
	// as a spike (or a dip).
	n := max(1, int((window+bucket-1)/bucket))
	if rest := window - time.Duration(n-1)*bucket; n > 1 && rest < bucket/2 {
		n--
	}
	s := Series{
		BucketSeconds: bucket.Seconds(), Start: make([]float64, n), Width: make([]float64, n),
		Failed: make([]float64, n), Kinds: []KindSeries{},
	}
	width := s.Width
	for i := range n {
		s.Start[i] = (time.Duration(i) * bucket).Seconds()
		width[i] = bucket.Seconds()
	}
	width[n-1] = (window - time.Duration(n-1)*bucket).Seconds()
	if run.Rate != nil {
		s.Asked = make([]float64, n)
		for i := range n {
			s.Asked[i] = finite(run.Rate(time.Duration(i)*bucket + time.Duration(width[i]*float64(time.Second))/2))
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(c.kinds), func(a, b scenario.Kind) int { return cmp.Compare(kindOrder(a), kindOrder(b)) }) {
		d := c.kinds[k]
		buckets := make([][]time.Duration, n)
		for _, smp := range d.samples {
			i := min(int(smp.at/bucket), n-1)
			buckets[i] = append(buckets[i], smp.latency)
			if smp.failed {
				s.Failed[i] += 1 / width[i]
			}
		}
		ks := KindSeries{Kind: k, Rate: make([]float64, n), P50: make([]*float64, n), P99: make([]*float64, n)}
		for i, b := range buckets {
			ks.Rate[i] = float64(len(b)) / width[i]
			if len(b) == 0 {
				continue
			}
			slices.Sort(b)
			p50, p99 := ms(Percentile(b, 50)), ms(Percentile(b, 99))
			ks.P50[i], ks.P99[i] = &p50, &p99
		}
		s.Kinds = append(s.Kinds, ks)
	}
	return s
}
