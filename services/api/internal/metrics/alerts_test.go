package metrics_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The runbook that every alert's runbook_url points into, relative to this
// package; runbook_url itself is relative to the repository root.
const runbookFile = "../../../../deploy/README.md"

var (
	alertStart = regexp.MustCompile(`(?m)^\s*- alert: (\w+)\s*$`)
	severity   = regexp.MustCompile(`(?m)^\s*severity: (\S+)\s*$`)
	runbookURL = regexp.MustCompile(`(?m)^\s*runbook_url: "deploy/README\.md#([a-z0-9-]+)"\s*$`)
	heading    = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
)

// anchors returns the anchors GitHub gives the headings of a Markdown
// file: lower case, spaces to hyphens, other punctuation dropped.
func anchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(path))
	if err != nil {
		t.Fatal(err)
	}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	out := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(string(b), -1) {
		a := drop.ReplaceAllString(strings.ToLower(strings.TrimSpace(m[1])), "")
		out[strings.ReplaceAll(a, " ", "-")] = true
	}
	return out
}

// Every alert carries what an on-call engineer needs: a severity that
// Alertmanager routes (critical or warning; the Watchdog heartbeat none), a
// summary, a description and a runbook section that exists.
func TestAlertsFollowConventions(t *testing.T) {
	b, err := os.ReadFile(filepath.FromSlash(promqlFiles[1]))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	runbook := anchors(t, runbookFile)
	starts := alertStart.FindAllStringSubmatchIndex(text, -1)
	if len(starts) == 0 {
		t.Fatal("got no alerts in alerts.yml, want some")
	}
	for i, s := range starts {
		end := len(text)
		if i+1 < len(starts) {
			end = starts[i+1][0]
		}
		name, rule := text[s[2]:s[3]], text[s[0]:end]
		t.Run(name, func(t *testing.T) {
			want := "critical|warning"
			if name == "Watchdog" {
				want = "none"
			}
			m := severity.FindStringSubmatch(rule)
			if m == nil || !regexp.MustCompile(`^(`+want+`)$`).MatchString(m[1]) {
				t.Errorf("severity: got %v, want %s", m, want)
			}
			for _, a := range []string{"summary:", "description:"} {
				if !strings.Contains(rule, a) {
					t.Errorf("annotations: got no %s, want one", a)
				}
			}
			u := runbookURL.FindStringSubmatch(rule)
			if u == nil {
				t.Fatalf("runbook_url: got none, want \"deploy/README.md#<section>\"")
			}
			if !runbook[u[1]] {
				t.Errorf("runbook_url: got #%s, want a heading of deploy/README.md with that anchor", u[1])
			}
		})
	}
}

// The heading check must be able to fail: an anchor that no heading makes
// is not found.
func TestAnchorsOfHeadings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	if err := os.WriteFile(path, []byte("# Runbook\n### ApiReplicaDown\ntext # not a heading\n## Redis: memory near max\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := anchors(t, path)
	for a, want := range map[string]bool{"runbook": true, "apireplicadown": true, "redis-memory-near-max": true, "not-a-heading": false} {
		if got[a] != want {
			t.Errorf("anchor %s: got %v, want %v", a, got[a], want)
		}
	}
}
