package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/bench"
)

func TestBenchClusterUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "broadcast", "--edges", "3"}, // the cluster scenario's
		{"bench", "cluster", "--generators", "2", "--conns", "40000"},
		{"bench", "cluster", "--nats-servers", "0"},
		{"bench", "--generators", "2"}, // needs a scenario
	} {
		code, stdout, stderr := runCmd(t.Context(), "", args...)
		if code != 2 || stderr == "" || stdout != "" {
			t.Errorf("roomcast %q: exit %d, stdout %q, stderr %q; want 2 and a message", args, code, stdout, stderr)
		}
	}
}

// The cluster scenario, small, with every process real: three NATS
// servers (an R3 stream) and two edges against two clustered reference
// servers, two generator processes. Every step at a low rate delivers
// every event, and every figure has a value on both targets.
func TestBenchClusterScenario(t *testing.T) {
	t.Setenv(asBinary, "1")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	code, stdout, stderr := runCmd(ctx, "", "bench", "cluster", "--conns", "120", "--nats-servers", "3", "--edges", "2",
		"--generators", "2", "--rate", "20", "--max-rate", "20", "--duration", "1s", "--grace", "20s", "--runs", "1", "--json")
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	steps := map[string]int{}
	for _, line := range lines[:len(lines)-1] {
		var st bench.Step
		if err := json.Unmarshal([]byte(line), &st); err != nil {
			t.Fatalf("step line %q: %v", line, err)
		}
		steps[st.Target+" "+st.Step]++
		if st.Step == "search" {
			continue // a busy machine may fail a step on its p99
		}
		if !st.Passed || st.Lost != 0 || st.Connections != 120 {
			t.Errorf("step %+v: want passed, none lost, 120 connections", st)
		}
		if want := int64(bench.ClusterAllEvents * 120); st.Step == "fan-out to all" && (st.Delivered != want || st.Expected != want) {
			t.Errorf("fan-out to all: %+v, want %d events delivered to each of 120", st, bench.ClusterAllEvents)
		}
	}
	for _, target := range []string{bench.TargetRoomcast, bench.TargetNATS} {
		for _, step := range []string{"idle", "fan-out to all", "fixed-rate"} {
			if steps[target+" "+step] != 1 {
				t.Errorf("%s: %d %q steps, want 1 (%v)", target, steps[target+" "+step], step, steps)
			}
		}
	}
	var sum bench.Summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || !sum.Summary || len(sum.Figures) != 9 {
		t.Fatalf("summary %q: %v, want nine figures", lines[len(lines)-1], err)
	}
	for _, f := range sum.Figures {
		for _, target := range []string{bench.TargetRoomcast, bench.TargetNATS} {
			r := f.Targets[target]
			// CPU time comes in 10ms ticks: a 1s step may take less than
			// one on a process, a failed measurement rather than a value.
			if f.Unit == "µs" && r != nil && r.Failed == 1 {
				continue
			}
			if r == nil || r.Median == nil || !(*r.Median > 0) {
				t.Errorf("figure %q on %s: %+v, want a positive median", f.Name, target, r)
			}
		}
	}
}
