package demo_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/bus/bustest"
	"github.com/roomcast/roomcast/internal/demo"
	"github.com/roomcast/roomcast/internal/events"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// The simulation publishes what it claims: a stream read of every room
// finds each event it counted, by name, and every kind of event appears.
func TestDemoPublishesWhatItCounts(t *testing.T) {
	b := bustest.New(t)
	var stats demo.Stats
	cfg := demo.Config{Pools: 2, Workers: 4, Workflows: 2, Rate: 10_000, Events: 600, Seed: 7}
	if err := demo.Run(t.Context(), cfg, events.NewPublisher(b), &stats); err != nil {
		t.Fatal(err)
	}
	if stats.Total() != cfg.Events {
		t.Fatalf("published %d, want %d", stats.Total(), cfg.Events)
	}
	stored := map[string]int{}
	rooms := []string{"pool:p1", "pool:p2"}
	for i := 1; i <= 100; i++ { // more workflows than the run can have started
		rooms = append(rooms, "workflow:w"+strconv.Itoa(i))
	}
	for _, r := range rooms {
		_, err := b.Replay(t.Context(), wire.MustRoom(r), 0, 1<<40, func(ev *wire.Event) error {
			stored[ev.Name]++
			return nil
		})
		if err != nil {
			t.Fatalf("read %s: %v", r, err)
		}
	}
	for name, n := range stats.Counts() {
		if stored[name] != n {
			t.Errorf("%s: counted %d, stored %d", name, n, stored[name])
		}
	}
	for _, name := range []string{events.WorkerStatusChanged, events.TaskAssigned, events.PoolScaling, events.PoolStatusChanged,
		events.WorkflowStarted, events.WorkflowStageCompleted, events.WorkflowCompleted} {
		if stored[name] == 0 {
			t.Errorf("no %s in %d events", name, cfg.Events)
		}
	}
}

// Run stops when its context ends.
func TestDemoStopsWithItsContext(t *testing.T) {
	b := bustest.New(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var stats demo.Stats
	go func() { done <- demo.Run(ctx, demo.Config{Rate: 50}, events.NewPublisher(b), &stats) }()
	natstest.WaitFor(t, 10*time.Second, func() error {
		if stats.Total() == 0 {
			return context.DeadlineExceeded
		}
		return nil
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
}

// Bad settings are refused together, with what is wrong.
func TestBadSettingsAreRefused(t *testing.T) {
	err := demo.Config{Pools: -1, Rate: -5, Events: -1}.Validate()
	for _, want := range []string{"pools", "rate", "events"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err %v, want one naming %s", err, want)
		}
	}
}

// The simulation's events carry their keys (events.KeyOf's) in the
// stream, and workers it removes end theirs.
func TestDemoPublishesKeysAndDeletes(t *testing.T) {
	b := bustest.New(t)
	var stats demo.Stats
	cfg := demo.Config{Pools: 1, Workers: 4, Workflows: 1, Rate: 10_000, Events: 400, Seed: 7}
	if err := demo.Run(t.Context(), cfg, events.NewPublisher(b), &stats); err != nil {
		t.Fatal(err)
	}
	keyed, deleted := 0, 0
	for _, r := range []string{"pool:p1", "workflow:w1"} {
		_, err := b.Replay(t.Context(), wire.MustRoom(r), 0, 1<<40, func(ev *wire.Event) error {
			key, del, err := events.KeyOf(ev.Name, ev.Data)
			if err != nil || ev.Err != nil || ev.Key != key || ev.KeyDeleted != del {
				t.Errorf("%s #%d %s %s: key %q deleted %v (%v), want %q %v (%v)", r, ev.Seq, ev.Name, ev.Data, ev.Key, ev.KeyDeleted, ev.Err, key, del, err)
			}
			if ev.Key != "" {
				keyed++
			}
			if ev.KeyDeleted {
				deleted++
			}
			return nil
		})
		if err != nil {
			t.Fatalf("read %s: %v", r, err)
		}
	}
	if keyed == 0 || deleted == 0 {
		t.Fatalf("%d keyed events, %d deletes in %d events; want some of each", keyed, deleted, cfg.Events)
	}
	t.Logf("%d events: %d keyed, %d deletes", stats.Total(), keyed, deleted)
}
