package k8s_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// update rewrites the generated files: go test ./deploy/k8s -run TestGenerated -update
var update = flag.Bool("update", false, "rewrite base/nginx.conf and base/prometheusrule.yaml from their sources")

// Sources of the generated files, and the files, relative to this package.
const (
	nginxSource  = "../../nginx.conf"
	nginxFile    = "base/nginx.conf"
	alertsSource = "../prometheus/alerts.yml"
	rulesFile    = "base/prometheusrule.yaml"
)

// TestGenerated fails when a generated file no longer says what its source
// says: the proxy's nginx.conf and the PrometheusRule follow the compose
// stack's nginx.conf and alerts.yml, and cannot drift from them.
func TestGenerated(t *testing.T) {
	t.Run("nginx.conf", func(t *testing.T) {
		src := readFile(t, nginxSource)
		want, err := kubernetesNginxConf(src, namespaceOf(t, "base"))
		if err != nil {
			t.Fatal(err)
		}
		if *update {
			writeFile(t, nginxFile, want)
		}
		got := readFile(t, nginxFile)
		if !slicesEqual(directives(got), directives(want)) {
			t.Errorf("%s differs from %s with the Kubernetes changes: run go test ./deploy/k8s -run TestGenerated -update", nginxFile, nginxSource)
		}
	})
	t.Run("prometheusrule.yaml", func(t *testing.T) {
		src := readFile(t, alertsSource)
		if *update {
			gen, err := prometheusRuleYAML(src)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, rulesFile, gen)
		}
		var want ruleFile
		if err := decodeStrict(src, &want); err != nil {
			t.Fatalf("%s: %v", alertsSource, err)
		}
		if len(want.Groups) == 0 {
			t.Fatalf("%s has no rule group", alertsSource)
		}
		m := build(t, "base")
		if len(m.prometheusRules) != 1 {
			t.Fatalf("got %d PrometheusRules, want 1", len(m.prometheusRules))
		}
		if got := m.prometheusRules[0].Spec; !reflect.DeepEqual(got, want) {
			t.Errorf("PrometheusRule/%s's groups differ from %s: run go test ./deploy/k8s -run TestGenerated -update\n got %+v\nwant %+v",
				m.prometheusRules[0].Name, alertsSource, got, want)
		}
	})
}

// The compose stack's nginx finds the replicas through a network alias that
// it resolves once, at start. In Kubernetes the replicas come and go with
// new addresses, so the upstream server becomes the API's headless Service
// with `resolve` (nginx 1.27.3 and later), re-resolved through the
// cluster's DNS every 5 s. Nothing else changes.
//
// The compose stack's backup line (the same replicas again, never left out,
// for restarts faster than one at a time) is dropped: a Deployment's rolling
// update keeps ready pods in the Service while it replaces the others, and
// `backup` together with `resolve` is nothing these offline tests can try.
var (
	upstreamServer = regexp.MustCompile(`(?m)^(\s*)server api-replicas:3000( .*;)$`)
	upstreamBackup = regexp.MustCompile(`(?m)^\s*server api-replicas:3000 [^;\n]*\bbackup;\n`)
	upstreamZone   = regexp.MustCompile(`(?m)^(\s*)zone api .*;$`)
)

func kubernetesNginxConf(src []byte, namespace string) ([]byte, error) {
	src = upstreamBackup.ReplaceAll(src, nil)
	if n := len(upstreamServer.FindAll(src, -1)); n != 1 {
		return nil, fmt.Errorf("%s: found %d upstream server lines for api-replicas:3000, want 1: adapt kubernetesNginxConf", nginxSource, n)
	}
	if n := len(upstreamZone.FindAll(src, -1)); n != 1 {
		return nil, fmt.Errorf("%s: found %d zone lines in upstream api, want 1: adapt kubernetesNginxConf", nginxSource, n)
	}
	if n := bytes.Count(src, []byte("\nworker_processes auto;\n")); n != 1 {
		return nil, fmt.Errorf("%s: found %d lines `worker_processes auto;`, want 1: adapt kubernetesNginxConf", nginxSource, n)
	}
	// auto starts a worker per CPU of the node, not of the pod: on a large
	// node dozens of workers of some 3.6 MB each would pass the proxy's
	// 128 MiB limit before any traffic, on a quota of one CPU.
	src = bytes.Replace(src, []byte("\nworker_processes auto;\n"),
		[]byte("\n# Kubernetes: one worker, the proxy's CPU limit (proxy.yaml), not one per CPU of the node.\nworker_processes 1;\n"), 1)
	host := "api." + namespace + ".svc.cluster.local"
	out := upstreamServer.ReplaceAll(src, []byte("${1}server "+host+":3000 resolve${2}"))
	out = upstreamZone.ReplaceAllFunc(out, func(zone []byte) []byte {
		indent := zone[:len(zone)-len(bytes.TrimLeft(zone, " \t"))]
		return fmt.Appendf(nil, "%s\n%s# Kubernetes: re-resolve the headless Service as replicas come and go.\n%sresolver kube-dns.kube-system.svc.cluster.local valid=5s;", zone, indent, indent)
	})
	header := "# GENERATED from the repository's nginx.conf by\n" +
		"#   go test ./deploy/k8s -run TestGenerated -update\n" +
		"# Edit nginx.conf instead. The differences: the upstream server is the\n" +
		"# API's headless Service, re-resolved (`resolve`, nginx >= 1.27.3), and\n" +
		"# there is no backup server line; one worker process, the proxy's CPU limit.\n"
	return append([]byte(header), out...), nil
}

// directives returns the lines of an nginx configuration without comments,
// blank lines and indentation: what nginx reads.
func directives(conf []byte) []string {
	var out []string
	for line := range strings.SplitSeq(string(conf), "\n") {
		if i := strings.Index(line, "#"); i >= 0 && !strings.Contains(line[:i], "'") {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

func slicesEqual(a, b []string) bool { return reflect.DeepEqual(a, b) }

// prometheusRuleYAML wraps alerts.yml's groups, comments included, in a
// PrometheusRule.
func prometheusRuleYAML(alerts []byte) ([]byte, error) {
	i := bytes.Index(alerts, []byte("\ngroups:"))
	if i < 0 {
		return nil, fmt.Errorf("%s: no top-level groups:", alertsSource)
	}
	var b bytes.Buffer
	b.WriteString("# GENERATED from deploy/prometheus/alerts.yml by\n" +
		"#   go test ./deploy/k8s -run TestGenerated -update\n" +
		"# Edit alerts.yml (and its tests, rules_test.yml) instead.\n" +
		"apiVersion: monitoring.coreos.com/v1\n" +
		"kind: PrometheusRule\n" +
		"metadata:\n" +
		"  name: api\n" +
		"spec:\n")
	for line := range strings.SplitSeq(strings.TrimRight(string(alerts[i+1:]), "\n"), "\n") {
		if line != "" {
			b.WriteString("  ")
		}
		b.WriteString(line + "\n")
	}
	return b.Bytes(), nil
}

func decodeStrict(doc []byte, v any) error {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	strictErrs, err := json.UnmarshalStrict(js, v)
	if err != nil {
		return err
	}
	if len(strictErrs) > 0 {
		return fmt.Errorf("strict decoding: %v", strictErrs)
	}
	return nil
}

// namespaceOf returns the one Namespace a kustomization creates.
func namespaceOf(t *testing.T, dir string) string {
	t.Helper()
	m := build(t, dir)
	if len(m.namespaces) != 1 {
		t.Fatalf("%s: got %d Namespaces, want 1", dir, len(m.namespaces))
	}
	return m.namespaces[0].Name
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
