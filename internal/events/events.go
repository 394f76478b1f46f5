// Package events is the typed vocabulary of the pool and workflow events of
// docs/protocol.md section 2, and a Publisher that stores them: one function per
// event, each a JetStream publish with a message id that returns the event's
// stored sequence. `roomcast demo`, `publish` and the tests build events
// here, so their shapes live in one place.
package events

import "time"

// Event names, as docs/protocol.md section 2 lists them.
const (
	WorkerStatusChanged    = "worker.status_changed"
	WorkerRemovedEvent     = "worker.removed" // a worker left its pool; WorkerRemoved is pool.scaling's event_type
	TaskAssigned           = "task.assigned"
	TaskCompleted          = "task.completed"
	TaskFailed             = "task.failed"
	PoolScaling            = "pool.scaling"
	PoolStatusChanged      = "pool.status_changed"
	WorkflowStarted        = "workflow.started"
	WorkflowStageCompleted = "workflow.stage_completed"
	WorkflowCompleted      = "workflow.completed"
	WorkflowFailed         = "workflow.failed"
)

// Worker statuses the pool system reports (others may come).
const (
	StatusIdle  = "idle"
	StatusBusy  = "busy"
	StatusError = "error"
)

// Scaling event types (others may come).
const (
	WorkerAdded   = "worker_added"
	WorkerRemoved = "worker_removed"
	ScaledUp      = "scaled_up"
	ScaledDown    = "scaled_down"
)

// WorkerStatus is the data of worker.status_changed.
type WorkerStatus struct {
	WorkerID string `json:"worker_id"`
	Status   string `json:"status"`
	PoolID   string `json:"pool_id"`
}

// WorkerRemoval is the data of worker.removed.
type WorkerRemoval struct {
	WorkerID string `json:"worker_id"`
	PoolID   string `json:"pool_id"`
}

// TaskAssignment is the data of task.assigned; Metadata's fields sit
// beside the others in the JSON.
type TaskAssignment struct {
	TaskID    string
	WorkerID  string
	PoolID    string
	Timestamp time.Time
	Metadata  map[string]any
}

// TaskOutcome is the data of task.completed and task.failed: the task,
// the worker that ran it, how long it ran, and for task.failed why it
// failed. Timestamp is when it ended (now when zero).
type TaskOutcome struct {
	TaskID    string
	WorkerID  string
	PoolID    string
	Duration  time.Duration // sent as duration_ms
	Error     string        // task.failed only
	Timestamp time.Time
}

// Scaling is the data of pool.scaling; Details' fields sit beside the
// others in the JSON.
type Scaling struct {
	PoolID    string
	EventType string
	Timestamp time.Time
	Details   map[string]any
}

// PoolStatus is the data of pool.status_changed.
type PoolStatus struct {
	PoolID string       `json:"pool_id"`
	Status PoolSnapshot `json:"status"`
}

// PoolSnapshot is a pool's state in pool.status_changed.
type PoolSnapshot struct {
	WorkerCount int `json:"worker_count"`
	QueueSize   int `json:"queue_size"`
}

// WorkflowStart is the data of workflow.started.
type WorkflowStart struct {
	WorkflowID string `json:"workflow_id"`
	Adapter    string `json:"adapter"`
	Prompt     string `json:"prompt"`
}

// WorkflowStage is the data of workflow.stage_completed.
type WorkflowStage struct {
	WorkflowID string `json:"workflow_id"`
	StageName  string `json:"stage_name"`
}

// WorkflowResult is the data of workflow.completed.
type WorkflowResult struct {
	WorkflowID string `json:"workflow_id"`
	Result     any    `json:"result"`
}

// WorkflowFailure is the data of workflow.failed: the stage that failed,
// when one did, and why.
type WorkflowFailure struct {
	WorkflowID string `json:"workflow_id"`
	StageName  string `json:"stage_name,omitempty"`
	Error      string `json:"error"`
}
