package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"redis-session-app/loadtest/internal/report"
)

// TestReportPathsAreCheckedFirst: a -json or -html path that cannot be
// written is a usage error, found before any request is sent.
func TestReportPathsAreCheckedFirst(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-dir", "report")
	tests := []struct {
		name string
		args []string
	}{
		{"JSONInAMissingDirectory", []string{"-json", missing + ".json"}},
		{"HTMLInAMissingDirectory", []string{"-html", missing + ".html"}},
		{"JSONIsADirectory", []string{"-json", dir}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				fmt.Fprint(w, "ok")
			}))
			defer srv.Close()
			var out bytes.Buffer
			err := run(context.Background(), append([]string{"loadtest", "-target", srv.URL, "-scenario", "mixed", "-users", "2",
				"-rate", "20", "-duration", "1s", "-progress", "0"}, tc.args...), &out, &out)
			var usage *usageError
			if !errors.As(err, &usage) {
				t.Errorf("got %v, want a usage error (exit 2)", err)
			}
			if n := requests.Load(); n != 0 {
				t.Errorf("the target got %d requests, want none: the path is checked before the set-up", n)
			}
		})
	}
}

func TestCheckWritable(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "old.json")
	if err := os.WriteFile(existing, []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(dir, "new.json")
	if err := checkWritable(fresh); err != nil {
		t.Errorf("checkWritable(a new file) = %v, want nil", err)
	}
	if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the check left %s behind (%v)", fresh, err)
	}
	if err := checkWritable(existing); err != nil {
		t.Errorf("checkWritable(an existing file) = %v, want nil", err)
	}
	if b, _ := os.ReadFile(existing); string(b) != "kept" {
		t.Errorf("the check changed an existing file to %q", b)
	}
	for _, bad := range []string{dir, filepath.Join(dir, "missing", "x.json")} {
		if err := checkWritable(bad); err == nil {
			t.Errorf("checkWritable(%s) = nil, want an error", bad)
		}
	}
}

// TestOneReportFailingKeepsTheOther: when one of the report files cannot
// be written, the other still is, and the error names the one that failed.
func TestOneReportFailingKeepsTheOther(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "gone", "report")
	good := filepath.Join(dir, "report")
	sum := report.NewCollector(time.Now()).Summarize(report.Run{Model: "closed"}, time.Second, 0)
	tests := []struct {
		name                string
		json, html, written string
	}{
		{"JSONFails", bad + ".json", good + ".html", good + ".html"},
		{"HTMLFails", good + ".json", bad + ".html", good + ".json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := writeReports(sum, tc.json, tc.html)
			if err == nil || !strings.Contains(err.Error(), bad) {
				t.Errorf("got %v, want an error naming %s", err, bad)
			}
			if fi, err := os.Stat(tc.written); err != nil || fi.Size() == 0 {
				t.Errorf("%s not written (%v)", tc.written, err)
			}
		})
	}
}
