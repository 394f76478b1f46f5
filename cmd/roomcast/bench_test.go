package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/bench"
)

// asBinary, set in the environment, makes the test binary run as roomcast
// itself: the scenarios start their servers from os.Executable(), which in
// a test is this binary.
const asBinary = "BENCH_TEST_RUN_AS_ROOMCAST" // not ROOMCAST_*: the bench keeps those from its servers

func TestMain(m *testing.M) {
	if os.Getenv(asBinary) == "1" {
		main()
	}
	os.Exit(m.Run())
}

func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--scenario", "nope"},
		{"bench", "--scenario", "idle", "--runs", "0"},
		{"bench", "broadcast", "--target", "redis"},
		{"bench", "broadcast", "--scenario", "idle"},
		{"bench", "--target", "nats"}, // needs a scenario
		{"bench", "--runs", "2"},
		{"bench", "idle", "--url", "ws://127.0.0.1:1"},
		{"bench", "broadcast", "--rooms", "3"},
		{"bench", "rooms", "--rate", "-1"},
		{"bench", "rooms", "--rate", "0"},
		{"bench", "broadcast", "--max-rate", "-5"},
		{"bench", "broadcast", "--conns", "20000"},
		{"bench", "resume", "--resume-clients", "0"},
		{"bench", "broadcast", "--duration", "0s"},
		{"bench", "--protocol", "mqtt"},
		{"bench", "--server-pid", "-3"},
		{"bench", "broadcast", "extra"},
		{"bench", "--rate", "fast"},
		{"bench", "scale-out", "--tolerance", "0"},
		{"bench", "scale-out", "--tolerance", "1"},
		{"bench", "scale-out", "--conns", "10", "--rooms", "11"},
		{"bench", "--tolerance", "0.1"},  // needs a scenario
		{"bench", "--server-cores", "0"}, // needs a scenario
		{"bench", "broadcast", "--server-cores", "0-"},
		{"bench", "broadcast", "--client-cores", "x"},
		{"bench", "broadcast", "--server-cores", "0", "--client-cores", "0"},
		{"bench", "broadcast", "--server-cores", "1000"},
		{"bench", "broadcast", "--target", "ceiling"},
	} {
		code, stdout, stderr := runCmd(t.Context(), "", args...)
		if code != 2 || stderr == "" || stdout != "" {
			t.Errorf("roomcast %q: exit %d, stdout %q, stderr %q; want 2 and a message", args, code, stdout, stderr)
		}
	}
}

// A short broadcast scenario with the servers as real child processes:
// a step per target with deliveries, and a ratio in the summary.
func TestBenchScenarioStartsServers(t *testing.T) {
	t.Setenv(asBinary, "1") // for the children only: this process is past TestMain
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	// Not pinned: the scenario runs in this process, which it would pin.
	code, stdout, stderr := runCmd(ctx, "", "bench", "broadcast", "--conns", "3", "--rate", "20",
		"--duration", "500ms", "--grace", "10s", "--runs", "1", "--max-rate", "-1", "--json",
		"--server-cores", "none", "--client-cores", "none")
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a step per target and a summary, got:\n%s", stdout)
	}
	for i, target := range []string{bench.TargetRoomcast, bench.TargetNATS} {
		var st bench.Step
		if err := json.Unmarshal([]byte(lines[i]), &st); err != nil {
			t.Fatalf("step line %q: %v", lines[i], err)
		}
		if st.Target != target || st.Delivered != 30 || !st.Passed {
			t.Errorf("step %+v: want %s, 30 deliveries, passed", st, target)
		}
	}
	var sum bench.Summary
	if err := json.Unmarshal([]byte(lines[2]), &sum); err != nil || !sum.Summary || len(sum.Figures) != 1 {
		t.Fatalf("summary %q: %v", lines[2], err)
	}
	f := sum.Figures[0]
	for _, target := range []string{bench.TargetRoomcast, bench.TargetNATS} {
		if r := f.Targets[target]; r == nil || len(r.Runs) != 1 && r.Failed != 1 {
			t.Errorf("%s: %+v, want one run", target, r)
		}
	}
	// CPU time comes in 10ms ticks: a 0.5s run of 30 deliveries may take
	// less than one, then the figure is a failed measurement, not a ratio.
	if r := f.Targets[bench.TargetRoomcast]; r.Median != nil && f.Targets[bench.TargetNATS].Median != nil && f.Ratio == nil {
		t.Errorf("both measured but no ratio: %s", lines[2])
	}
}

// The scale-out scenario with its edges as real child processes, three on
// one NATS server: a step that passed (balanced, nothing lost), and the
// summary's four figures with the reference n/a.
func TestBenchScaleOutStartsEdges(t *testing.T) {
	t.Setenv(asBinary, "1")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	code, stdout, stderr := runCmd(ctx, "", "bench", "scale-out", "--conns", "60", "--rooms", "6", "--rate", "20",
		"--runs", "1", "--json", "--server-cores", "none", "--client-cores", "none")
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a step per target and a summary, got:\n%s", stdout)
	}
	var st bench.Step
	if err := json.Unmarshal([]byte(lines[0]), &st); err != nil {
		t.Fatalf("step line %q: %v", lines[0], err)
	}
	if st.Target != bench.TargetRoomcast || !st.Passed || !(st.Seconds > 0) || !(st.ReconnectsPeak > 0) || st.Lost != 0 || st.Delivered == 0 {
		t.Errorf("step %+v: want roomcast passed, a time to balance, reconnects, deliveries and none lost", st)
	}
	var sum bench.Summary
	if err := json.Unmarshal([]byte(lines[2]), &sum); err != nil || len(sum.Figures) != 4 {
		t.Fatalf("summary %q: %v, want four figures", lines[2], err)
	}
	for _, f := range sum.Figures {
		if r := f.Targets[bench.TargetRoomcast]; r == nil || r.Median == nil {
			t.Errorf("figure %q: %+v, want a roomcast median", f.Name, r)
		}
		if r := f.Targets[bench.TargetNATS]; r == nil || r.NA == "" {
			t.Errorf("figure %q: reference %+v, want n/a", f.Name, r)
		}
	}
}

// The three targets with the default split of the CPUs, the bench a child
// process (it pins itself): a step per target delivering every event, and a
// summary that names the cores of each side and has ratios to the floor.
// (Whether a step passes depends on its p99, which busy cores decide.)
func TestBenchScenarioPinsAndMeasuresTheFloor(t *testing.T) {
	if runtime.GOOS != "linux" || bench.SplitCores().Servers == nil {
		t.Skip("needs Linux and two CPUs")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "bench", "broadcast", "--target", "all", "--conns", "3", "--rate", "20",
		"--duration", "500ms", "--grace", "10s", "--runs", "1", "--max-rate", "-1", "--json")
	cmd.Env = append(os.Environ(), asBinary+"=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v:\n%s\n%s", err, out, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(bench.Targets)+1 {
		t.Fatalf("want a step per target and a summary, got:\n%s", out)
	}
	for i, target := range bench.Targets {
		var st bench.Step
		if err := json.Unmarshal([]byte(lines[i]), &st); err != nil {
			t.Fatalf("step line %q: %v", lines[i], err)
		}
		if st.Target != target || st.Delivered != 30 || st.Lost != 0 {
			t.Errorf("step %+v: want %s, 30 deliveries, none lost", st, target)
		}
	}
	var sum bench.Summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || !sum.Summary || len(sum.Figures) != 1 {
		t.Fatalf("summary %q: %v", lines[len(lines)-1], err)
	}
	split := bench.SplitCores()
	if sum.ServerCores != bench.FormatCPUList(split.Servers) || sum.ClientCores != bench.FormatCPUList(split.Clients) {
		t.Errorf("cores: servers %q, clients %q; want %s", sum.ServerCores, sum.ClientCores, split)
	}
	// CPU time comes in 10ms ticks: a target may have used less than one.
	f := sum.Figures[0]
	for _, target := range []string{bench.TargetRoomcast, bench.TargetNATS} {
		measured := f.Targets[target].Median != nil && f.Targets[bench.TargetFloor].Median != nil
		if _, ok := f.ToFloor[target]; ok != measured {
			t.Errorf("%s: ratio to the floor %v, measured %v: %s", target, f.ToFloor, measured, lines[len(lines)-1])
		}
	}
}
