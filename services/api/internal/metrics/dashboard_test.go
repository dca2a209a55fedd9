package metrics_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/extra/redisprometheus/v9"
	"github.com/redis/go-redis/v9"

	"redis-session-app/services/api/internal/metrics"
)

// The files whose PromQL must only name metrics the service exports,
// relative to this package.
var promqlFiles = []string{
	"../../../../deploy/grafana/dashboards/api.json",
	"../../../../deploy/prometheus/alerts.yml",
}

// metricRef matches the metric names the dashboard and the rules may use:
// the service's own (api_…), the Go and process collectors', and
// Prometheus's own up.
var metricRef = regexp.MustCompile(`\b(?:api|go|process)_[a-zA-Z0-9_]+\b|\bup\{`)

// descName pulls the metric name out of a prometheus.Desc's String().
var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

// recorder is a Registerer that remembers what it is given, so the test can
// ask every collector for its descriptors: a vector with no children yet
// exposes nothing through Gather, but it describes itself.
type recorder struct {
	collectors []prometheus.Collector
}

func (r *recorder) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	r.collectors = append(r.collectors, cs...)
}

func (r *recorder) Unregister(prometheus.Collector) bool { return false }

// exported returns every series name a replica exposes: the metrics of
// New, plus the go-redis pool collector that cmd/api registers with the
// same namespace and subsystem. Histogram and summary names also stand for
// their _bucket, _sum and _count series.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	rec := &recorder{}
	metrics.New(rec, "v", "r")
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { client.Close() })
	rec.MustRegister(redisprometheus.NewCollector("api", "redis", client))

	names := map[string]bool{"up": true}
	for _, c := range rec.collectors {
		ch := make(chan *prometheus.Desc)
		go func() {
			c.Describe(ch)
			close(ch)
		}()
		for d := range ch {
			m := descName.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read the name of %s", d)
			}
			names[m[1]] = true
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[m[1]+suffix] = true
			}
		}
	}
	return names
}

// referenced returns the metric names that the file at path mentions.
func referenced(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(path))
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	seen := map[string]bool{}
	for _, m := range metricRef.FindAllString(string(b), -1) {
		seen[strings.TrimSuffix(m, "{")] = true
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func TestDashboardAndAlertsUseExportedMetrics(t *testing.T) {
	have := exported(t)
	for _, path := range promqlFiles {
		t.Run(filepath.Base(path), func(t *testing.T) {
			names := referenced(t, path)
			if len(names) == 0 {
				t.Fatalf("got no metric names in %s, want the ones its queries use", path)
			}
			for _, n := range names {
				if !have[n] {
					t.Errorf("%s queries %s: got no such metric from the service, want one it exports", path, n)
				}
			}
		})
	}
}

// The dashboard must show what the deployment promises to show, so that a
// panel cannot be dropped without this test noticing.
func TestDashboardCoversTheContractMetrics(t *testing.T) {
	used := map[string]bool{}
	for _, n := range referenced(t, promqlFiles[0]) {
		used[n] = true
	}
	want := []string{
		"api_http_requests_total",
		"api_http_request_duration_seconds_bucket",
		"api_logins_total",
		"api_sessions_created_total",
		"api_sessions_revoked_total",
		"api_ratelimit_rejections_total",
		"api_redis_errors_total",
		"api_redis_pool_conn_total_current",
		"api_redis_pool_timeout_total",
		"api_build_info",
		"api_redis_up",
	}
	for _, n := range want {
		if !used[n] {
			t.Errorf("dashboard queries of %s: got none, want at least one panel", n)
		}
	}

	// The exporters' key series. Their names are the exporters' to keep;
	// the compose smoke test checks that Prometheus has them.
	b, err := os.ReadFile(filepath.FromSlash(promqlFiles[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{
		"redis_memory_used_bytes",
		"redis_memory_max_bytes",
		"redis_evicted_keys_total",
		"redis_connected_clients",
		"redis_commands_processed_total",
		"redis_aof_last_write_status",
		"nginx_connections_active",
		"nginx_http_requests_total",
	} {
		if !strings.Contains(string(b), n+"{") {
			t.Errorf("dashboard queries of %s: got none, want at least one panel", n)
		}
	}
}

// dashboard is the part of Grafana's dashboard JSON the tests read.
type dashboard struct {
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Title       string      `json:"title"`
		Type        string      `json:"type"`
		Datasource  *datasource `json:"datasource"`
		FieldConfig struct {
			Defaults struct {
				Unit string `json:"unit"`
			} `json:"defaults"`
		} `json:"fieldConfig"`
		Targets []struct {
			Expr       string      `json:"expr"`
			Datasource *datasource `json:"datasource"`
		} `json:"targets"`
	} `json:"panels"`
}

type datasource struct {
	UID string `json:"uid"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(promqlFiles[0]))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("parsing the dashboard: %v", err)
	}
	return d
}

// The dashboard works with any Prometheus data source and narrows down to
// replicas and routes through its variables.
func TestDashboardVariables(t *testing.T) {
	d := readDashboard(t)
	types := map[string]string{}
	for _, v := range d.Templating.List {
		types[v.Name] = v.Type
	}
	for name, want := range map[string]string{"datasource": "datasource", "instance": "query", "route": "query"} {
		if got := types[name]; got != want {
			t.Errorf("variable %s: got type %q, want %q", name, got, want)
		}
	}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: got data source %+v, want uid ${datasource}", p.Title, p.Datasource)
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q, query %s: got data source %+v, want uid ${datasource}", p.Title, tg.Expr, tg.Datasource)
			}
			if strings.Contains(tg.Expr, `job="api"`) && !strings.Contains(tg.Expr, `instance=~"$instance"`) {
				t.Errorf("panel %q, query %s: got no instance filter, want instance=~\"$instance\"", p.Title, tg.Expr)
			}
		}
		if p.FieldConfig.Defaults.Unit == "" {
			t.Errorf("panel %q: got no unit, want one", p.Title)
		}
	}
}

// Login and register hash a password on purpose (argon2id) and take
// hundreds of milliseconds; mixed into a latency panel they would hide the
// other routes, so every latency query either leaves them out, as the
// ApiHighLatencyP99 alert does, or shows only them.
func TestDashboardLatencyLeavesOutHashing(t *testing.T) {
	const hashing = `"/auth/(login|register)"`
	for _, p := range readDashboard(t).Panels {
		for _, tg := range p.Targets {
			if !strings.Contains(tg.Expr, "api_http_request_duration_seconds") {
				continue
			}
			if !strings.Contains(tg.Expr, "route!~"+hashing) && !strings.Contains(tg.Expr, "route=~"+hashing) {
				t.Errorf("panel %q, query %s: got login and register mixed in, want route!~%s or only them", p.Title, tg.Expr, hashing)
			}
		}
	}
}

// The check itself must be able to fail: a misspelt name is reported.
func TestReferencedFindsUnknownNames(t *testing.T) {
	have := exported(t)
	path := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(path, []byte(`expr: rate(api_http_request_total[5m]) > 0 and up{job="api"} == 1`), 0o600); err != nil {
		t.Fatal(err)
	}
	var unknown []string
	for _, n := range referenced(t, path) {
		if !have[n] {
			unknown = append(unknown, n)
		}
	}
	if got, want := strings.Join(unknown, ","), "api_http_request_total"; got != want {
		t.Errorf("unknown names: got %v, want %v", got, want)
	}
}
