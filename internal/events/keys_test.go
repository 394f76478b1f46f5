package events_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/internal/events"
	"github.com/roomcast/roomcast/internal/wire"
)

// KeyOf is the vocabulary's key rule: every event of docs/protocol.md
// section 2 gets the key of its thing, or none; a keyed event without a
// usable id is an error naming the field, never an unkeyed event.
func TestKeyOf(t *testing.T) {
	long := strings.Repeat("x", wire.MaxKeyLen-len("worker:"))
	for _, tc := range []struct {
		event, data string
		key         string
		deleted     bool
		wantErr     string // "" for none
	}{
		// Every event of the vocabulary.
		{events.WorkerStatusChanged, `{"worker_id":"w1","status":"busy","pool_id":"p1"}`, "worker:w1", false, ""},
		{events.WorkerRemovedEvent, `{"worker_id":"w1","pool_id":"p1"}`, "worker:w1", true, ""},
		{events.TaskAssigned, `{"task_id":"t1","worker_id":"w1","pool_id":"p1"}`, "task:t1", false, ""},
		{events.TaskCompleted, `{"task_id":"t1","worker_id":"w1","pool_id":"p1","duration_ms":3}`, "task:t1", false, ""},
		{events.TaskFailed, `{"task_id":"t1","worker_id":"w1","pool_id":"p1","error":"oom"}`, "task:t1", false, ""},
		{events.PoolStatusChanged, `{"pool_id":"p1","status":{"worker_count":2}}`, "pool:p1", false, ""},
		{events.PoolScaling, `{"pool_id":"p1","event_type":"scaled_up"}`, "", false, ""},
		{events.PoolScaling, `{"pool_id":"p1","event_type":"worker_added","worker_id":"w3"}`, "", false, ""},
		{events.PoolScaling, `{"pool_id":"p1","event_type":"worker_removed","worker_id":"w3"}`, "worker:w3", true, ""},
		{events.PoolScaling, `{"pool_id":"p1","event_type":"worker_removed"}`, "", false, ""},
		{events.PoolScaling, `{"pool_id":"p1","event_type":"worker_removed","worker_id":null}`, "", false, ""},
		{events.WorkflowStarted, `{"workflow_id":"w42"}`, "workflow:w42", false, ""},
		{events.WorkflowStageCompleted, `{"workflow_id":"w42","stage_name":"plan"}`, "workflow:w42", false, ""},
		{events.WorkflowCompleted, `{"workflow_id":"w42"}`, "workflow:w42", false, ""},
		{events.WorkflowFailed, `{"workflow_id":"w42","error":"x"}`, "workflow:w42", false, ""},
		// Families: any event of worker.*, task.*, workflow.*.
		{"task.progress", `{"task_id":"t1","pct":40}`, "task:t1", false, ""},
		{"task.progress", `{"pct":40}`, "", false, ""},
		{"worker.heartbeat", `{"worker_id":null}`, "", false, ""},
		{"worker.heartbeat", `{"worker_id":"w 1"}`, "", false, "makes no valid key"},
		{"worker.heartbeat", `{"worker_id":"550e8400-e29b-41d4-a716-446655440000"}`, "worker:550e8400-e29b-41d4-a716-446655440000", false, ""},
		{"worker.status_changed", `{"worker_id":"` + long + `"}`, "worker:" + long, false, ""},
		// Other events: no key, whatever their data.
		{"custom.event", `{"worker_id":"w1"}`, "", false, ""},
		{"custom.event", ``, "", false, ""},
		{"pool.other", `{"pool_id":"p1"}`, "", false, ""},
		{"worker", `{"worker_id":"w1"}`, "", false, ""},
		{"workers.x", `{"worker_id":"w1"}`, "", false, ""},
		// Missing ids.
		{events.WorkerStatusChanged, `{"status":"busy","pool_id":"p1"}`, "", false, "worker.status_changed: data lacks worker_id"},
		{events.WorkerRemovedEvent, `{"worker_id":null,"pool_id":"p1"}`, "", false, "lacks worker_id"},
		{events.TaskCompleted, `{"worker_id":"w1","pool_id":"p1"}`, "", false, "task.completed: data lacks task_id"},
		{events.PoolStatusChanged, `{"status":{}}`, "", false, "lacks pool_id"},
		{events.WorkflowStarted, `{}`, "", false, "lacks workflow_id"},
		{events.WorkerStatusChanged, ``, "", false, "must be a JSON object"},
		{events.PoolScaling, `[1]`, "", false, "must be a JSON object"},
		// Bad ids.
		{events.WorkerStatusChanged, `{"worker_id":7}`, "", false, "worker_id must be a string"},
		{events.WorkerStatusChanged, `{"worker_id":""}`, "", false, "worker_id is empty"},
		{events.WorkerStatusChanged, `{"worker_id":"w 1"}`, "", false, `worker_id "w 1" makes no valid key`},
		{events.TaskAssigned, `{"task_id":"t*"}`, "", false, `task_id "t*" makes no valid key`},
		{events.WorkflowFailed, `{"workflow_id":"wörk"}`, "", false, "workflow_id"},
		{events.PoolScaling, `{"event_type":"worker_removed","worker_id":"a>b"}`, "", false, "worker_id"},
		{events.PoolScaling, `{"event_type":"worker_removed","worker_id":""}`, "", false, "worker_id is empty"},
		{"worker.status_changed", `{"worker_id":"` + long + `x"}`, "", false, "longer than 128"},
	} {
		key, deleted, err := events.KeyOf(tc.event, json.RawMessage(tc.data))
		switch {
		case tc.wantErr == "" && (err != nil || key != tc.key || deleted != tc.deleted):
			t.Errorf("KeyOf(%s, %s) = %q, %v, %v; want %q, %v", tc.event, tc.data, key, deleted, err, tc.key, tc.deleted)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || key != "" || deleted):
			t.Errorf("KeyOf(%s, %s) = %q, %v, %v; want an error with %q", tc.event, tc.data, key, deleted, err, tc.wantErr)
		}
		if key != "" {
			if err := wire.CheckKey(key); err != nil {
				t.Errorf("KeyOf(%s, %s) made key %q that breaks the grammar: %v", tc.event, tc.data, key, err)
			}
		}
	}
	// An id that breaks the grammar is a bad key, as the edges would say.
	if _, _, err := events.KeyOf(events.WorkerStatusChanged, json.RawMessage(`{"worker_id":"w 1"}`)); !errors.Is(err, wire.ErrBadKey) {
		t.Errorf("bad worker id: %v, want ErrBadKey", err)
	}
}
