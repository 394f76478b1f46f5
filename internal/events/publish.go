package events

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/nats-io/nuid"

	"github.com/roomcast/roomcast/internal/wire"
)

// Store stores one event of a room and returns its sequence; o's MsgID
// makes a retry idempotent, its key goes in the key headers. bus.Bus is
// one.
type Store interface {
	Publish(ctx context.Context, r wire.Room, payload []byte, o wire.PublishOptions) (uint64, error)
}

// Publisher publishes the pool and workflow events to their rooms
// (pool:<pool_id>, workflow:<workflow_id>), each with a message id of its
// own, so a retry of the same call after a lost acknowledgement cannot
// store it twice, and with the key KeyOf gives it.
type Publisher struct {
	store Store
}

// NewPublisher returns a Publisher storing through s. It is safe for
// concurrent use.
func NewPublisher(s Store) *Publisher {
	return &Publisher{store: s}
}

// WorkerStatusChanged publishes worker.status_changed to pool:<pool>.
func (p *Publisher) WorkerStatusChanged(ctx context.Context, d WorkerStatus) (uint64, error) {
	return p.publish(ctx, "pool", d.PoolID, WorkerStatusChanged, d)
}

// WorkerRemoved publishes worker.removed to pool:<pool>, which ends the
// worker's key.
func (p *Publisher) WorkerRemoved(ctx context.Context, d WorkerRemoval) (uint64, error) {
	return p.publish(ctx, "pool", d.PoolID, WorkerRemovedEvent, d)
}

// TaskAssigned publishes task.assigned to pool:<pool>.
func (p *Publisher) TaskAssigned(ctx context.Context, d TaskAssignment) (uint64, error) {
	return p.publish(ctx, "pool", d.PoolID, TaskAssigned, flatten(d.Metadata, map[string]any{
		"task_id": d.TaskID, "worker_id": d.WorkerID, "pool_id": d.PoolID, "timestamp": stamp(d.Timestamp),
	}))
}

// TaskCompleted publishes task.completed to pool:<pool>.
func (p *Publisher) TaskCompleted(ctx context.Context, d TaskOutcome) (uint64, error) {
	return p.publish(ctx, "pool", d.PoolID, TaskCompleted, taskOutcome(d, nil))
}

// TaskFailed publishes task.failed to pool:<pool>.
func (p *Publisher) TaskFailed(ctx context.Context, d TaskOutcome) (uint64, error) {
	return p.publish(ctx, "pool", d.PoolID, TaskFailed, taskOutcome(d, map[string]any{"error": d.Error}))
}

// taskOutcome is the data of a task's outcome, with extra's fields.
func taskOutcome(d TaskOutcome, extra map[string]any) map[string]any {
	return flatten(extra, map[string]any{
		"task_id": d.TaskID, "worker_id": d.WorkerID, "pool_id": d.PoolID,
		"duration_ms": max(0, d.Duration.Milliseconds()), "timestamp": stamp(d.Timestamp),
	})
}

// PoolScaling publishes pool.scaling to pool:<pool>.
func (p *Publisher) PoolScaling(ctx context.Context, d Scaling) (uint64, error) {
	return p.publish(ctx, "pool", d.PoolID, PoolScaling, flatten(d.Details, map[string]any{
		"pool_id": d.PoolID, "event_type": d.EventType, "timestamp": stamp(d.Timestamp),
	}))
}

// PoolStatusChanged publishes pool.status_changed to pool:<pool>.
func (p *Publisher) PoolStatusChanged(ctx context.Context, d PoolStatus) (uint64, error) {
	return p.publish(ctx, "pool", d.PoolID, PoolStatusChanged, d)
}

// WorkflowStarted publishes workflow.started to workflow:<id>.
func (p *Publisher) WorkflowStarted(ctx context.Context, d WorkflowStart) (uint64, error) {
	return p.publish(ctx, "workflow", d.WorkflowID, WorkflowStarted, d)
}

// WorkflowStageCompleted publishes workflow.stage_completed to workflow:<id>.
func (p *Publisher) WorkflowStageCompleted(ctx context.Context, d WorkflowStage) (uint64, error) {
	return p.publish(ctx, "workflow", d.WorkflowID, WorkflowStageCompleted, d)
}

// WorkflowCompleted publishes workflow.completed to workflow:<id>.
func (p *Publisher) WorkflowCompleted(ctx context.Context, d WorkflowResult) (uint64, error) {
	return p.publish(ctx, "workflow", d.WorkflowID, WorkflowCompleted, d)
}

// WorkflowFailed publishes workflow.failed to workflow:<id>.
func (p *Publisher) WorkflowFailed(ctx context.Context, d WorkflowFailure) (uint64, error) {
	return p.publish(ctx, "workflow", d.WorkflowID, WorkflowFailed, d)
}

// Publish stores event name with raw data in room r, as Payload builds
// it, keyed by KeyOf, with msgID (empty: a fresh one): the way in for
// events given as text.
func (p *Publisher) Publish(ctx context.Context, r wire.Room, name string, data json.RawMessage, msgID string) (uint64, error) {
	b, err := Payload(r, name, data)
	if err != nil {
		return 0, err
	}
	key, deleted, err := KeyOf(name, data)
	if err != nil {
		return 0, err
	}
	return p.put(ctx, r, name, b, wire.PublishOptions{MsgID: msgID, Key: key, KeyDeleted: deleted})
}

// PublishAs is Publish with the key o names instead of KeyOf's (none when
// o.Key is ""): `roomcast publish --key` and `--no-key`. o's key must pass
// wire.ParseKey.
func (p *Publisher) PublishAs(ctx context.Context, r wire.Room, name string, data json.RawMessage, o wire.PublishOptions) (uint64, error) {
	b, err := Payload(r, name, data)
	if err != nil {
		return 0, err
	}
	if err := o.CheckKey(); err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return p.put(ctx, r, name, b, o)
}

// store stores one checked payload of event name in room r, with a fresh
// message id when o has none.
func (p *Publisher) put(ctx context.Context, r wire.Room, name string, payload []byte, o wire.PublishOptions) (uint64, error) {
	if o.MsgID == "" {
		o.MsgID = nuid.Next()
	}
	seq, err := p.store.Publish(ctx, r, payload, o)
	if err != nil {
		return 0, fmt.Errorf("%s to %s: %w", name, r, err)
	}
	return seq, nil
}

// publish stores event with data in room kind:id, keyed by KeyOf.
func (p *Publisher) publish(ctx context.Context, kind, id, event string, data any) (uint64, error) {
	r, err := wire.ParseRoom(kind + ":" + id)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", event, err)
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", event, err)
	}
	key, deleted, err := KeyOf(event, raw)
	if err != nil {
		return 0, err
	}
	b, err := json.Marshal(wire.Payload{Event: event, Data: raw})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", event, err)
	}
	return p.put(ctx, r, event, b, wire.PublishOptions{Key: key, KeyDeleted: deleted})
}

// flatten puts extra's fields beside fixed's, which win a clash: the
// named fields are what monitors read.
func flatten(extra, fixed map[string]any) map[string]any {
	out := make(map[string]any, len(extra)+len(fixed))
	maps.Copy(out, extra)
	maps.Copy(out, fixed)
	return out
}

// stamp is a time as the events carry it: RFC 3339 in UTC, now when zero.
func stamp(t time.Time) string {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().Format(time.RFC3339Nano)
}
