package events_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/internal/events"
	"github.com/roomcast/roomcast/internal/wire"
)

// Check holds the events of docs/protocol.md section 2 to the fields monitors
// read, and to their room; other events to valid JSON only.
func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		room, name, data string
		wantErr          string // "" for none
	}{
		{"pool:p1", events.WorkerStatusChanged, `{"worker_id":"w1","status":"busy","pool_id":"p1","extra":1}`, ""},
		{"pool:p1", events.WorkerStatusChanged, `{"worker_id":"w1","pool_id":"p1"}`, "lacks status"},
		{"pool:p1", events.WorkerStatusChanged, `{"worker_id":"w1","status":null,"pool_id":"p1"}`, "lacks status"},
		{"pool:p1", events.WorkerStatusChanged, `{"worker_id":"w1","status":"busy","pool_id":"p2"}`, "but the room is pool:p1"},
		{"pool:p1", events.WorkerStatusChanged, `{"worker_id":"w1","status":"busy","pool_id":1}`, "but the room is pool:p1"},
		{"adapter:a1", events.WorkerStatusChanged, `{"worker_id":"w1","status":"busy","pool_id":"p2"}`, ""},
		{"pool:p1", events.WorkerStatusChanged, `[1]`, "must be a JSON object"},
		{"pool:p1", events.WorkerStatusChanged, ``, "must be a JSON object"},
		{"pool:p1", events.WorkerRemovedEvent, `{"worker_id":"w1","pool_id":"p1"}`, ""},
		{"pool:p1", events.WorkerRemovedEvent, `{"pool_id":"p1"}`, "lacks worker_id"},
		{"pool:p1", events.WorkerRemovedEvent, `{"worker_id":"w1","pool_id":"p2"}`, "but the room is pool:p1"},
		{"pool:p1", events.TaskAssigned, `{"task_id":"t1","worker_id":"w1","pool_id":"p1"}`, ""},
		{"pool:p1", events.TaskAssigned, `{"pool_id":"p1"}`, "lacks task_id, worker_id"},
		{"pool:p1", events.TaskCompleted, `{"task_id":"t1","worker_id":"w1","pool_id":"p1","duration_ms":1200}`, ""},
		{"pool:p1", events.TaskCompleted, `{"task_id":"t1","worker_id":"w1","pool_id":"p1","duration_ms":0}`, ""},
		{"pool:p1", events.TaskCompleted, `{"task_id":"t1","pool_id":"p1"}`, "lacks worker_id, duration_ms"},
		{"pool:p1", events.TaskCompleted, `{"task_id":"t1","worker_id":"w1","pool_id":"p1","duration_ms":"1s"}`, "duration_ms must be a whole number"},
		{"pool:p1", events.TaskCompleted, `{"task_id":"t1","worker_id":"w1","pool_id":"p1","duration_ms":-5}`, "duration_ms must be a whole number"},
		{"pool:p1", events.TaskCompleted, `{"task_id":"t1","worker_id":"w1","pool_id":"p1","duration_ms":1.5}`, "duration_ms must be a whole number"},
		{"pool:p1", events.TaskCompleted, `{"task_id":"t1","worker_id":"w1","pool_id":"p2","duration_ms":3}`, "but the room is pool:p1"},
		{"pool:p1", events.TaskFailed, `{"task_id":"t1","worker_id":"w1","pool_id":"p1","error":"oom"}`, ""},
		{"pool:p1", events.TaskFailed, `{"task_id":"t1","worker_id":"w1","pool_id":"p1","error":"oom","duration_ms":40}`, ""},
		{"pool:p1", events.TaskFailed, `{"task_id":"t1","worker_id":"w1","pool_id":"p1"}`, "lacks error"},
		{"pool:p1", events.TaskFailed, `{"task_id":"t1","worker_id":"w1","pool_id":"p1","error":"oom","duration_ms":true}`, "duration_ms must be a whole number"},
		{"pool:p1", events.WorkerStatusChanged, `{"worker_id":"w1","status":"busy","pool_id":"p1","duration_ms":"free"}`, ""},
		{"pool:p1", events.PoolScaling, `{"pool_id":"p1","event_type":"scaled_up"}`, ""},
		{"pool:p1", events.PoolStatusChanged, `{"pool_id":"p1","status":{"worker_count":2}}`, ""},
		{"pool:p1", events.PoolStatusChanged, `{"pool_id":"p1","status":"ok"}`, "status must be an object"},
		{"workflow:w1", events.WorkflowStarted, `{"workflow_id":"w1"}`, ""},
		{"workflow:w1", events.WorkflowStageCompleted, `{"workflow_id":"w1"}`, "lacks stage_name"},
		{"workflow:w1", events.WorkflowFailed, `{"workflow_id":"w2","error":"x"}`, "but the room is workflow:w1"},
		{"pool:p1", "custom.event", `{"anything":[1,2]}`, ""},
		{"pool:p1", "custom.event", ``, ""},
		{"pool:p1", "custom.event", `{bad`, "not valid JSON"},
		{"pool:p1", "bad name", `{}`, "event"},
	} {
		err := events.Check(wire.MustRoom(tc.room), tc.name, json.RawMessage(tc.data))
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s %s %s: %v", tc.room, tc.name, tc.data, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s %s %s: %v, want an error with %q", tc.room, tc.name, tc.data, err, tc.wantErr)
		}
	}
}
