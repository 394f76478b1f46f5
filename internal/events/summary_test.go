package events_test

import (
	"encoding/json"
	"testing"

	"github.com/roomcast/roomcast/internal/events"
)

// Task outcomes and a failed workflow's stage read as a person reads them.
func TestSummaryOfOutcomes(t *testing.T) {
	for _, tc := range []struct{ event, data, want string }{
		{events.TaskCompleted, `{"task_id":"t1","worker_id":"w1","pool_id":"p1","duration_ms":1200,"timestamp":"x"}`, "task t1 completed by w1  1200 ms"},
		{events.TaskFailed, `{"task_id":"t1","worker_id":"w1","pool_id":"p1","duration_ms":40,"error":"oom","timestamp":"x"}`, "task t1 failed on w1  40 ms  oom"},
		{events.TaskFailed, `{"task_id":"t1","worker_id":"w1","error":"oom","retry":true}`, "task t1 failed on w1  oom  retry=true"},
		{events.WorkflowFailed, `{"workflow_id":"w1","stage_name":"fetch","error":"timeout"}`, "w1  failed at stage fetch  timeout"},
		{events.TaskCompleted, `{"pool_id":"p1"}`, `{"pool_id":"p1"}`},
	} {
		if got := events.Summary(tc.event, json.RawMessage(tc.data), false); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.event, tc.data, got, tc.want)
		}
	}
}
