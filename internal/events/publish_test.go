package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/bus/bustest"
	"github.com/roomcast/roomcast/internal/events"
	"github.com/roomcast/roomcast/internal/wire"
)

// stored reads back the event stored at seq in room r.
func stored(t *testing.T, b *bus.Bus, r string, seq uint64) (string, map[string]any) {
	t.Helper()
	var got *wire.Event
	_, err := b.Replay(t.Context(), wire.MustRoom(r), seq-1, seq, func(ev *wire.Event) error {
		got = ev
		return nil
	})
	if err != nil || got == nil || got.Seq != seq {
		t.Fatalf("read back %s seq %d: %+v, %v", r, seq, got, err)
	}
	var data map[string]any
	if err := json.Unmarshal(got.Data, &data); err != nil {
		t.Fatalf("data %s: %v", got.Data, err)
	}
	return got.Name, data
}

// Every event of docs/protocol.md section 2 is stored in its room, under its
// name, with the fields monitors read; extra fields sit beside them and
// never replace them. Each carries the key KeyOf gives it in the key
// headers, and only there: the payload is the event and its data.
func TestEveryEventIsStoredWithItsShape(t *testing.T) {
	b, nc := bustest.NewConn(t)
	p := events.NewPublisher(b)
	ctx := t.Context()
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	cases := []struct {
		room, event string
		publish     func() (uint64, error)
		want        map[string]any
		key         string // "": unkeyed
		deleted     bool
	}{
		{"pool:p1", events.WorkerStatusChanged, func() (uint64, error) {
			return p.WorkerStatusChanged(ctx, events.WorkerStatus{WorkerID: "w1", Status: events.StatusBusy, PoolID: "p1"})
		}, map[string]any{"worker_id": "w1", "status": "busy", "pool_id": "p1"}, "worker:w1", false},
		{"pool:p1", events.TaskAssigned, func() (uint64, error) {
			return p.TaskAssigned(ctx, events.TaskAssignment{TaskID: "t9", WorkerID: "w1", PoolID: "p1", Timestamp: at,
				Metadata: map[string]any{"priority": "high", "task_id": "clash"}})
		}, map[string]any{"task_id": "t9", "worker_id": "w1", "pool_id": "p1", "timestamp": "2026-12-01T08:00:00Z", "priority": "high"}, "task:t9", false},
		{"pool:p1", events.TaskCompleted, func() (uint64, error) {
			return p.TaskCompleted(ctx, events.TaskOutcome{TaskID: "t9", WorkerID: "w1", PoolID: "p1", Duration: 1500 * time.Millisecond, Timestamp: at})
		}, map[string]any{"task_id": "t9", "worker_id": "w1", "pool_id": "p1", "duration_ms": 1500.0, "timestamp": "2026-12-01T08:00:00Z"}, "task:t9", false},
		{"pool:p1", events.TaskFailed, func() (uint64, error) {
			return p.TaskFailed(ctx, events.TaskOutcome{TaskID: "t9", WorkerID: "w1", PoolID: "p1", Duration: -time.Second, Error: "oom", Timestamp: at})
		}, map[string]any{"task_id": "t9", "worker_id": "w1", "pool_id": "p1", "duration_ms": 0.0, "error": "oom", "timestamp": "2026-12-01T08:00:00Z"}, "task:t9", false},
		{"pool:p1", events.PoolScaling, func() (uint64, error) {
			return p.PoolScaling(ctx, events.Scaling{PoolID: "p1", EventType: events.ScaledUp, Timestamp: at,
				Details: map[string]any{"from": 2.0, "to": 4.0}})
		}, map[string]any{"pool_id": "p1", "event_type": "scaled_up", "timestamp": "2026-12-01T08:00:00Z", "from": 2.0, "to": 4.0}, "", false},
		{"pool:p1", events.PoolStatusChanged, func() (uint64, error) {
			return p.PoolStatusChanged(ctx, events.PoolStatus{PoolID: "p1", Status: events.PoolSnapshot{WorkerCount: 4, QueueSize: 17}})
		}, map[string]any{"pool_id": "p1", "status": map[string]any{"worker_count": 4.0, "queue_size": 17.0}}, "pool:p1", false},
		{"workflow:w42", events.WorkflowStarted, func() (uint64, error) {
			return p.WorkflowStarted(ctx, events.WorkflowStart{WorkflowID: "w42", Adapter: "llm", Prompt: "sum it up"})
		}, map[string]any{"workflow_id": "w42", "adapter": "llm", "prompt": "sum it up"}, "workflow:w42", false},
		{"workflow:w42", events.WorkflowStageCompleted, func() (uint64, error) {
			return p.WorkflowStageCompleted(ctx, events.WorkflowStage{WorkflowID: "w42", StageName: "plan"})
		}, map[string]any{"workflow_id": "w42", "stage_name": "plan"}, "workflow:w42", false},
		{"workflow:w42", events.WorkflowCompleted, func() (uint64, error) {
			return p.WorkflowCompleted(ctx, events.WorkflowResult{WorkflowID: "w42", Result: map[string]any{"ok": true}})
		}, map[string]any{"workflow_id": "w42", "result": map[string]any{"ok": true}}, "workflow:w42", false},
		{"workflow:w42", events.WorkflowFailed, func() (uint64, error) {
			return p.WorkflowFailed(ctx, events.WorkflowFailure{WorkflowID: "w42", Error: "timeout"})
		}, map[string]any{"workflow_id": "w42", "error": "timeout"}, "workflow:w42", false},
		{"workflow:w42", events.WorkflowFailed, func() (uint64, error) {
			return p.WorkflowFailed(ctx, events.WorkflowFailure{WorkflowID: "w42", StageName: "fetch", Error: "timeout"})
		}, map[string]any{"workflow_id": "w42", "stage_name": "fetch", "error": "timeout"}, "workflow:w42", false},
		{"pool:p1", events.WorkerRemovedEvent, func() (uint64, error) {
			return p.WorkerRemoved(ctx, events.WorkerRemoval{WorkerID: "w1", PoolID: "p1"})
		}, map[string]any{"worker_id": "w1", "pool_id": "p1"}, "worker:w1", true},
		{"pool:p1", events.PoolScaling, func() (uint64, error) {
			return p.PoolScaling(ctx, events.Scaling{PoolID: "p1", EventType: events.WorkerRemoved, Timestamp: at,
				Details: map[string]any{"worker_id": "w2"}})
		}, map[string]any{"pool_id": "p1", "event_type": "worker_removed", "timestamp": "2026-12-01T08:00:00Z", "worker_id": "w2"}, "worker:w2", true},
	}
	var last uint64
	for _, c := range cases {
		seq, err := c.publish()
		if err != nil {
			t.Fatalf("%s: %v", c.event, err)
		}
		if seq <= last {
			t.Fatalf("%s: seq %d after %d", c.event, seq, last)
		}
		last = seq
		name, data := stored(t, b, c.room, seq)
		if name != c.event {
			t.Fatalf("seq %d stored as %q, want %q", seq, name, c.event)
		}
		got, _ := json.Marshal(data)
		want, _ := json.Marshal(c.want)
		if string(got) != string(want) {
			t.Fatalf("%s data %s, want %s", c.event, got, want)
		}
		// The types and Check's table of shapes agree.
		if err := events.Check(wire.MustRoom(c.room), name, got); err != nil {
			t.Fatalf("%s as stored fails Check: %v", c.event, err)
		}
		bustest.CheckKey(t, bustest.Stored(t, nc, seq), c.key, c.deleted)
	}
}

// Publish, the way in for events given as text, checks them first and
// stores them as given, under the message id given.
func TestPublishChecksAndStoresRawEvents(t *testing.T) {
	b := bustest.New(t)
	p := events.NewPublisher(b)
	if _, err := p.Publish(t.Context(), wire.MustRoom("pool:p1"), events.WorkerStatusChanged, json.RawMessage(`{"worker_id":"w1"}`), ""); err == nil {
		t.Fatal("an event without its fields was stored")
	}
	data := json.RawMessage(`{"worker_id":"w1","status":"busy","pool_id":"p1","note":"x"}`)
	seq, err := p.Publish(t.Context(), wire.MustRoom("pool:p1"), events.WorkerStatusChanged, data, "id-1")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := p.Publish(t.Context(), wire.MustRoom("pool:p1"), events.WorkerStatusChanged, data, "id-1"); err != nil || again != seq {
		t.Fatalf("the same message id again: seq %d, %v; want %d (stored once)", again, err, seq)
	}
	if name, got := stored(t, b, "pool:p1", seq); name != events.WorkerStatusChanged || got["note"] != "x" {
		t.Fatalf("stored %s %v", name, got)
	}
}

// An id that makes no valid room is refused before anything is stored.
func TestBadIDsAreRefused(t *testing.T) {
	b := bustest.New(t)
	p := events.NewPublisher(b)
	for _, id := range []string{"", "has space", "a.b", "x>"} {
		_, err := p.WorkerStatusChanged(context.Background(), events.WorkerStatus{WorkerID: "w", Status: "idle", PoolID: id})
		if err == nil || !strings.Contains(err.Error(), events.WorkerStatusChanged) {
			t.Fatalf("pool id %q: err %v, want a refusal naming the event", id, err)
		}
	}
}

// Publish keys an event given as text by KeyOf and refuses one KeyOf
// cannot key; PublishAs stores the key it is given, or none, and refuses
// a key the edges would refuse, before anything is stored.
func TestRawEventsCarryTheirKeys(t *testing.T) {
	b, nc := bustest.NewConn(t)
	p := events.NewPublisher(b)
	r := wire.MustRoom("pool:p1")
	status := json.RawMessage(`{"worker_id":"w1","status":"busy","pool_id":"p1"}`)
	seq, err := p.Publish(t.Context(), r, events.WorkerStatusChanged, status, "")
	if err != nil {
		t.Fatal(err)
	}
	bustest.CheckKey(t, bustest.Stored(t, nc, seq), "worker:w1", false)
	if seq, err = p.Publish(t.Context(), r, "custom.event", json.RawMessage(`{"n":1}`), ""); err != nil {
		t.Fatal(err)
	}
	bustest.CheckKey(t, bustest.Stored(t, nc, seq), "", false)
	if _, err := p.Publish(t.Context(), r, events.WorkerStatusChanged, json.RawMessage(`{"worker_id":"w 1","status":"busy","pool_id":"p1"}`), ""); !errors.Is(err, wire.ErrBadKey) {
		t.Fatalf("a worker id that makes no key: %v", err)
	}

	for _, c := range []struct {
		name string
		o    wire.PublishOptions
	}{
		{events.WorkerStatusChanged, wire.PublishOptions{Key: "node:n7"}},
		{events.WorkerStatusChanged, wire.PublishOptions{}},
		{"custom.event", wire.PublishOptions{Key: "job:j1", KeyDeleted: true}},
	} {
		data := status
		if c.name == "custom.event" {
			data = json.RawMessage(`{"n":2}`)
		}
		seq, err := p.PublishAs(t.Context(), r, c.name, data, c.o)
		if err != nil {
			t.Fatalf("%s %+v: %v", c.name, c.o, err)
		}
		bustest.CheckKey(t, bustest.Stored(t, nc, seq), c.o.Key, c.o.KeyDeleted)
	}
	for _, o := range []wire.PublishOptions{{Key: "a b"}, {KeyDeleted: true}, {Key: strings.Repeat("k", wire.MaxKeyLen+1)}} {
		if _, err := p.PublishAs(t.Context(), r, "custom.event", nil, o); !errors.Is(err, wire.ErrBadKey) {
			t.Fatalf("PublishAs %+v: %v, want ErrBadKey", o, err)
		}
	}
	if last := countStored(t, b, "pool:p1"); last != 5 {
		t.Fatalf("%d events stored, want 5: a refused key stored something", last)
	}
}
