package events

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/roomcast/roomcast/internal/wire"
)

// keyRule is how an event's key is made: "<kind>:<its idField>". deletes
// says the event ends that key.
type keyRule struct {
	kind, idField string
	deletes       bool
}

// families are the events keyed by their name's first part, whatever the
// rest: every worker.* event is the state of its worker, and so on.
var families = map[string]keyRule{
	"worker":   {kind: "worker", idField: "worker_id"},
	"task":     {kind: "task", idField: "task_id"},
	"workflow": {kind: "workflow", idField: "workflow_id"},
}

// KeyOf is the pool vocabulary's key rule (docs/protocol.md, "Keys"): the
// key an event of this package's vocabulary sets, and whether it ends it.
//
//   - worker.* → worker:<worker_id>; worker.removed ends it
//   - task.* → task:<task_id>
//   - workflow.* → workflow:<workflow_id>
//   - pool.status_changed → pool:<pool_id>
//   - pool.scaling → none (history), but an event_type worker_removed with
//     a worker_id ends worker:<worker_id>
//   - any other event → none
//
// An event of the vocabulary the rule keys must carry its id as a
// non-empty string that makes a valid key (wire.CheckKey): otherwise
// KeyOf says which field is wrong rather than leave the event silently
// unkeyed. Another event of a family (task.progress) is keyed when it
// carries the id, and is history when it does not.
func KeyOf(event string, data json.RawMessage) (key string, deleted bool, err error) {
	rule, ok := ruleOf(event)
	if !ok && event != PoolScaling {
		return "", false, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return "", false, fmt.Errorf("%s: data must be a JSON object, to read the event's key from", event)
	}
	if event == PoolScaling {
		if !removesWorker(fields) {
			return "", false, nil // history only
		}
		rule = keyRule{kind: "worker", idField: "worker_id", deletes: true}
	}
	if _, known := shapes[event]; !known && !given(fields[rule.idField]) {
		// An event of a family beyond the vocabulary (task.progress,
		// say) that names no thing is history, as before keys.
		return "", false, nil
	}
	key, err = rule.key(event, fields)
	if err != nil {
		return "", false, err
	}
	return key, rule.deletes, nil
}

// ruleOf is the key rule of event, when it has one of its own.
func ruleOf(event string) (keyRule, bool) {
	switch event {
	case WorkerRemovedEvent:
		return keyRule{kind: "worker", idField: "worker_id", deletes: true}, true
	case PoolStatusChanged:
		return keyRule{kind: "pool", idField: "pool_id"}, true
	}
	family, _, dotted := strings.Cut(event, ".")
	rule, ok := families[family]
	return rule, ok && dotted
}

// given reports whether a field is present and not null.
func given(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

// removesWorker reports whether a pool.scaling event's data says a worker
// was removed, and names it.
func removesWorker(fields map[string]json.RawMessage) bool {
	var kind string
	if json.Unmarshal(fields["event_type"], &kind) != nil || kind != WorkerRemoved {
		return false
	}
	id, ok := fields["worker_id"]
	return ok && string(id) != "null"
}

// key is the key rule r makes of event's fields.
func (r keyRule) key(event string, fields map[string]json.RawMessage) (string, error) {
	raw, ok := fields[r.idField]
	if !ok || string(raw) == "null" {
		return "", fmt.Errorf("%s: data lacks %s, which makes the event's key %s:<%s>", event, r.idField, r.kind, r.idField)
	}
	var id string
	if err := json.Unmarshal(raw, &id); err != nil {
		return "", fmt.Errorf("%s: %s must be a string, to make the key %s:<%s>; got %.64s", event, r.idField, r.kind, r.idField, raw)
	}
	if id == "" {
		return "", fmt.Errorf("%s: %s is empty, so it makes no key %s:<%s>", event, r.idField, r.kind, r.idField)
	}
	key := r.kind + ":" + id
	if err := wire.CheckKey(key); err != nil {
		return "", fmt.Errorf("%s: %s %.64q makes no valid key %s:<%s>: %w", event, r.idField, id, r.kind, r.idField,
			fmt.Errorf("%w: %w", wire.ErrBadKey, err))
	}
	return key, nil
}
