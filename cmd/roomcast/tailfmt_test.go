package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/internal/events"
	"github.com/roomcast/roomcast/internal/wire"
)

var update = flag.Bool("update", false, "rewrite the golden files of tail's output")

// tail's lines for people, for each event of docs/protocol.md section 2, plain
// and coloured, against golden files (go test -run TestTailGolden -update
// rewrites them). The time, which is shown in the local zone, is left out.
func TestTailGolden(t *testing.T) {
	cases := []struct {
		event, room string
		data        string
	}{
		{events.WorkerStatusChanged, "pool:p1", `{"worker_id":"w1","status":"busy","pool_id":"p1"}`},
		{events.TaskAssigned, "pool:p1", `{"task_id":"t9","worker_id":"w1","pool_id":"p1","timestamp":"2026-12-01T08:00:00Z","priority":"high"}`},
		{events.PoolScaling, "pool:p1", `{"pool_id":"p1","event_type":"scaled_up","timestamp":"2026-12-01T08:00:00Z","workers":4}`},
		{events.PoolStatusChanged, "pool:p1", `{"pool_id":"p1","status":{"worker_count":4,"queue_size":17}}`},
		{events.WorkflowStarted, "workflow:w42", `{"workflow_id":"w42","adapter":"llm","prompt":"sum it up"}`},
		{events.WorkflowStageCompleted, "workflow:w42", `{"workflow_id":"w42","stage_name":"plan"}`},
		{events.WorkflowCompleted, "workflow:w42", `{"workflow_id":"w42","result":{"ok":true}}`},
		{events.WorkflowFailed, "workflow:w42", `{"workflow_id":"w42","error":"timeout"}`},
		{"custom.event", "pool:p1", `{"n":2}`},             // unknown: raw data
		{events.WorkerStatusChanged, "pool:p1", `{"n":2}`}, // fields missing: raw data
		{events.TaskCompleted, "pool:p1", `{"task_id":"t9","worker_id":"w1","pool_id":"p1","duration_ms":1200,"timestamp":"2026-12-01T08:00:00Z"}`},
		{events.TaskFailed, "pool:p1", `{"task_id":"t9","worker_id":"w1","pool_id":"p1","duration_ms":40,"error":"oom","timestamp":"2026-12-01T08:00:00Z"}`},
		{events.WorkerRemovedEvent, "pool:p1", `{"worker_id":"w1","pool_id":"p1"}`},
	}
	for i, c := range cases {
		m := wire.Message{Type: wire.TypeEvent, Room: c.room, Event: c.event, Seq: uint64(1000 + i),
			TS: "2026-12-01T08:00:00.123Z", Data: json.RawMessage(c.data)}
		var buf bytes.Buffer
		for _, colour := range []bool{false, true} {
			if err := printHuman(&buf, m, colour); err != nil {
				t.Fatal(err)
			}
		}
		got := withoutTimes(buf.String())
		golden := filepath.Join("testdata", "tail", c.event+suffix(c.data)+".golden")
		if *update {
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%s: %v (run with -update to write it)", golden, err)
		}
		if got != string(want) {
			t.Errorf("%s:\ngot\n%s\nwant\n%s", golden, got, want)
		}
	}
}

// suffix tells apart cases of one event name.
func suffix(data string) string {
	if strings.Contains(data, `"n":2`) {
		return ".raw"
	}
	return ""
}

// withoutTimes drops each line's first field, the local time.
func withoutTimes(s string) string {
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		_, rest, _ := strings.Cut(l, "  ")
		out = append(out, rest)
	}
	return strings.Join(out, "\n") + "\n"
}
