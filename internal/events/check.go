package events

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/roomcast/roomcast/internal/wire"
)

// shape is what monitors need of an event's data: the fields they read,
// and the field that names the event's room id (pool_id in pool:<id>).
type shape struct {
	kind, idField string
	fields        []string
}

// shapes of the events of docs/protocol.md section 2; other events are free.
var shapes = map[string]shape{
	WorkerStatusChanged:    {"pool", "pool_id", []string{"worker_id", "status"}},
	WorkerRemovedEvent:     {"pool", "pool_id", []string{"worker_id"}},
	TaskAssigned:           {"pool", "pool_id", []string{"task_id", "worker_id"}},
	TaskCompleted:          {"pool", "pool_id", []string{"task_id", "worker_id", "duration_ms"}},
	TaskFailed:             {"pool", "pool_id", []string{"task_id", "worker_id", "error"}},
	PoolScaling:            {"pool", "pool_id", []string{"event_type"}},
	PoolStatusChanged:      {"pool", "pool_id", []string{"status"}},
	WorkflowStarted:        {"workflow", "workflow_id", nil},
	WorkflowStageCompleted: {"workflow", "workflow_id", []string{"stage_name"}},
	WorkflowCompleted:      {"workflow", "workflow_id", nil},
	WorkflowFailed:         {"workflow", "workflow_id", []string{"error"}},
}

// Check reports whether data fits event name in room r: an event of
// docs/protocol.md section 2 needs a JSON object with the fields monitors read,
// and in a room of its kind its id field must be the room's id
// (worker.status_changed in pool:p1 says "pool_id": "p1"). Other events
// need only be valid JSON, or nothing.
func Check(r wire.Room, name string, data json.RawMessage) error {
	if err := wire.CheckEventName(name); err != nil {
		return err
	}
	if len(data) > 0 && !json.Valid(data) {
		return fmt.Errorf("%s: data is not valid JSON", name)
	}
	sh, known := shapes[name]
	if !known {
		return nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return fmt.Errorf("%s: data must be a JSON object with %s", name, strings.Join(append([]string{sh.idField}, sh.fields...), ", "))
	}
	var missing []string
	for _, f := range append([]string{sh.idField}, sh.fields...) {
		if v, ok := fields[f]; !ok || string(v) == "null" {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: data lacks %s, which monitors read (docs/protocol.md section 2)", name, strings.Join(missing, ", "))
	}
	if name == PoolStatusChanged && !strings.HasPrefix(strings.TrimSpace(string(fields["status"])), "{") {
		return fmt.Errorf("%s: status must be an object ({\"worker_count\": 4, \"queue_size\": 2})", name)
	}
	if name == TaskCompleted || name == TaskFailed {
		if err := checkDuration(name, fields); err != nil {
			return err
		}
	}
	if r.Kind() == sh.kind {
		var id string
		if err := json.Unmarshal(fields[sh.idField], &id); err != nil || id != r.ID() {
			return fmt.Errorf("%s: %s is %s, but the room is %s", name, sh.idField, fields[sh.idField], r)
		}
	}
	return nil
}

// Payload is the payload a worker publishes for event name with data in
// room r (docs/protocol.md section 2), after Check, and accepted by the same
// parser the edges use.
func Payload(r wire.Room, name string, data json.RawMessage) ([]byte, error) {
	if err := Check(r, name, data); err != nil {
		return nil, err
	}
	b, err := json.Marshal(wire.Payload{Event: name, Data: data})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if _, _, err := wire.ParsePayload(b); err != nil {
		return nil, err
	}
	return b, nil
}

// checkDuration holds a duration_ms, where there is one, to what monitors
// can show: a whole number of milliseconds, 0 or more.
func checkDuration(name string, fields map[string]json.RawMessage) error {
	v, ok := fields["duration_ms"]
	if !ok || string(v) == "null" {
		return nil
	}
	var ms float64
	if err := json.Unmarshal(v, &ms); err != nil || ms < 0 || ms != float64(int64(ms)) {
		return fmt.Errorf("%s: duration_ms must be a whole number of milliseconds, 0 or more, got %s", name, v)
	}
	return nil
}
