package main

import (
	"encoding/json"
	"runtime"
	"strconv"
	"testing"
)

// TestHashingSlotsFollowGOMAXPROCS: a replica hashes one password at once
// fewer than it may use CPUs, GOMAXPROCS (which follows a container's CPU
// quota), not than the machine has, and at least one; a replica of one
// CPU gets a second processor for the request handlers. NumCPU+1 is a
// count NumCPU can never give, so the check tells the two apart on any
// machine.
//
// Not parallel: GOMAXPROCS belongs to the whole process. Go runs the
// parallel tests only after the sequential ones have finished.
func TestHashingSlotsFollowGOMAXPROCS(t *testing.T) {
	for _, procs := range []int{1, runtime.NumCPU() + 1} {
		t.Run(strconv.Itoa(procs), func(t *testing.T) {
			prev := runtime.GOMAXPROCS(procs)
			t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
			r := startReplica(t, baseEnv(closedAddr(t), "slots"))

			got := -1
			for _, line := range r.logs.Lines() {
				var rec struct {
					Msg   string `json:"msg"`
					Slots int    `json:"slots"`
				}
				if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "password hashing" {
					got = rec.Slots
				}
			}
			if want := max(1, procs-1); got != want {
				t.Errorf("hashing slots: got %v, want %v (GOMAXPROCS %d)", got, want, procs)
			}
			if got, want := runtime.GOMAXPROCS(0), max(2, procs); got != want {
				t.Errorf("GOMAXPROCS after start: got %d, want %d", got, want)
			}
		})
	}
}
