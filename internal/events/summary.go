package events

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Summary is an event's main fields as a person reads them in a monitor,
// for `roomcast tail`: "w1  busy", "workers 4  queue 17", "stage plan
// completed". An event this package does not know, or whose data lacks
// the fields its summary needs, is shown as its raw data. With colour, the
// states (busy, idle, error, completed, failed) are coloured with ANSI
// codes.
func Summary(event string, data json.RawMessage, colour bool) string {
	var m map[string]any
	if json.Unmarshal(data, &m) != nil {
		return raw(data)
	}
	s := summarise(event, fields{m})
	if s == "" {
		return raw(data)
	}
	if !colour {
		return s
	}
	return paint(s)
}

func raw(data json.RawMessage) string {
	if len(data) == 0 {
		return "{}"
	}
	return string(data)
}

// fields reads an event's data; a missing or non-string field is "".
type fields struct{ m map[string]any }

func (f fields) str(k string) string {
	switch v := f.m[k].(type) {
	case string:
		return v
	case float64:
		return fmt.Sprint(v)
	}
	return ""
}

// rest is the fields other than known, as k=v sorted, for details.
func (f fields) rest(known ...string) string {
	var out []string
	for k, v := range f.m {
		if !contains(known, k) {
			b, _ := json.Marshal(v)
			out = append(out, k+"="+string(b))
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// summarise lays out the main fields of a known event, "" when they are
// not there.
func summarise(event string, f fields) string {
	switch event {
	case WorkerStatusChanged:
		return both(f.str("worker_id"), f.str("status"), "%-12s  %s")
	case WorkerRemovedEvent:
		return both(f.str("worker_id"), "removed", "%-12s  %s")
	case TaskAssigned:
		return then(both(f.str("task_id"), f.str("worker_id"), "task %s → %s"), extra(f, "task_id", "worker_id", "pool_id", "timestamp"))
	case TaskCompleted:
		return then(both(f.str("task_id"), f.str("worker_id"), "task %s completed by %s"), took(f)+extra(f, "task_id", "worker_id", "pool_id", "timestamp", "duration_ms"))
	case TaskFailed:
		return then(both(f.str("task_id"), f.str("worker_id"), "task %s failed on %s"), took(f)+"  "+f.str("error")+extra(f, "task_id", "worker_id", "pool_id", "timestamp", "duration_ms", "error"))
	case PoolScaling:
		return then(both(f.str("event_type"), " ", "%s%s"), extra(f, "event_type", "pool_id", "timestamp"))
	case PoolStatusChanged:
		st, ok := f.m["status"].(map[string]any)
		if !ok {
			return ""
		}
		s := fields{st}
		return then(both(s.str("worker_count"), s.str("queue_size"), "workers %-4s  queue %s"), extra(s, "worker_count", "queue_size"))
	case WorkflowStarted:
		return then(both(f.str("workflow_id"), "started", "%s  %s"), fmt.Sprintf("  adapter %s  %q", f.str("adapter"), f.str("prompt")))
	case WorkflowStageCompleted:
		return both(f.str("workflow_id"), f.str("stage_name"), "%s  stage %s completed")
	case WorkflowCompleted:
		b, _ := json.Marshal(f.m["result"])
		return then(both(f.str("workflow_id"), "completed", "%s  %s"), "  "+string(b))
	case WorkflowFailed:
		return then(both(f.str("workflow_id"), "failed", "%s  %s"), atStage(f)+"  "+f.str("error"))
	}
	return ""
}

// atStage is the stage a workflow failed at, or nothing.
func atStage(f fields) string {
	if s := f.str("stage_name"); s != "" {
		return " at stage " + s
	}
	return ""
}

// took is a task's duration, after two spaces, or nothing.
func took(f fields) string {
	if d := f.str("duration_ms"); d != "" {
		return "  " + d + " ms"
	}
	return ""
}

// both formats a and b with format when both are there, else "".
func both(a, b, format string) string {
	if a == "" || b == "" {
		return ""
	}
	return strings.TrimRight(fmt.Sprintf(format, a, b), " ")
}

// then is head followed by more, or "" without a head.
func then(head, more string) string {
	if head == "" {
		return ""
	}
	return head + more
}

// extra is the other fields, after two spaces, or nothing.
func extra(f fields, known ...string) string {
	if r := f.rest(known...); r != "" {
		return "  " + r
	}
	return ""
}

// colours of the states a monitor watches.
var colours = map[string]string{
	StatusBusy: "33", StatusIdle: "32", StatusError: "31",
	"completed": "32", "failed": "31", ScaledUp: "36", ScaledDown: "36", WorkerAdded: "36", WorkerRemoved: "36",
}

// paint colours the first state word of s.
func paint(s string) string {
	words := strings.Fields(s)
	for _, w := range words {
		if c, ok := colours[w]; ok {
			return strings.Replace(s, w, "\x1b["+c+"m"+w+"\x1b[0m", 1)
		}
	}
	return s
}
