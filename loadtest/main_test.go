package main

import (
	"io"
	"testing"
)

func TestCheckLoopback(t *testing.T) {
	tests := []struct {
		target string
		ok     bool
	}{
		{"http://127.0.0.1:8080", true},
		{"http://localhost:3000", true},
		{"http://127.3.4.5", true},
		{"http://[::1]:8080", true},
		{"http://10.0.0.1:8080", false},
		{"http://172.17.0.1:8080", false},
		{"http://example.com", false},
		{"127.0.0.1:8080", false},
		{"", false},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			err := checkLoopback(tc.target)
			if got := err == nil; got != tc.ok {
				t.Errorf("checkLoopback(%q) = %v, want ok %v", tc.target, err, tc.ok)
			}
		})
	}
}

func TestParseOptionsBounds(t *testing.T) {
	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"Defaults", nil, true},
		{"ErrDurationTooLong", []string{"-duration", "1h"}, false},
		{"ErrZeroRequests", []string{"-max-requests", "0"}, false},
		{"ErrTooManyUsers", []string{"-users", "1000"}, false},
		{"ErrRemoteTarget", []string{"-target", "http://192.168.1.1"}, false},
		{"ErrRelativePath", []string{"-path", "profile"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseOptions(append([]string{"loadtest"}, tc.args...), io.Discard)
			if got := err == nil; got != tc.ok {
				t.Errorf("parseOptions(%q) = %v, want ok %v", tc.args, err, tc.ok)
			}
		})
	}
}
