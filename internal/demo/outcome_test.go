package demo_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/bus/bustest"
	"github.com/roomcast/roomcast/internal/demo"
	"github.com/roomcast/roomcast/internal/events"
	"github.com/roomcast/roomcast/internal/wire"
)

// stages as the demo runs them.
var stages = []string{"plan", "fetch", "analyse", "summarise"}

// A workflow run's outcome follows its stages: a run whose four stages all
// completed is completed, never failed; a failed run names the stage that
// failed, the one after the last completed. Both outcomes occur.
func TestWorkflowOutcomesFollowTheirStages(t *testing.T) {
	b := bustest.New(t)
	var stats demo.Stats
	cfg := demo.Config{Pools: 1, Workers: 2, Workflows: 3, Rate: 10_000, Events: 4000, Seed: 11}
	if err := demo.Run(t.Context(), cfg, events.NewPublisher(b), &stats); err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int{}
	for i := 1; i <= cfg.Workflows; i++ {
		room := fmt.Sprintf("workflow:w%d", i)
		done := -1 // stages completed in the current run; -1 before the first start
		replay(t, b, room, func(name string, data map[string]any) {
			switch name {
			case events.WorkflowStarted:
				if done >= 0 {
					t.Fatalf("%s: a run started after %d stages with no outcome", room, done)
				}
				done = 0
			case events.WorkflowStageCompleted:
				if done < 0 || done >= len(stages) || data["stage_name"] != stages[done] {
					t.Fatalf("%s: stage %v after %d stages", room, data["stage_name"], done)
				}
				done++
			case events.WorkflowCompleted:
				if done != len(stages) {
					t.Fatalf("%s: completed after %d of %d stages", room, done, len(stages))
				}
				outcomes[name]++
				done = -1
			case events.WorkflowFailed:
				if done < 0 || done == len(stages) {
					t.Fatalf("%s: failed after %d stages, all %d completed: %v", room, done, len(stages), data)
				}
				if data["stage_name"] != stages[done] {
					t.Fatalf("%s: failed at stage %v, want %s (after %d completed)", room, data["stage_name"], stages[done], done)
				}
				outcomes[name]++
				done = -1
			}
		})
	}
	if outcomes[events.WorkflowCompleted] == 0 || outcomes[events.WorkflowFailed] == 0 {
		t.Fatalf("outcomes %v in %d events, want both", outcomes, cfg.Events)
	}
}

// Every task.completed and task.failed ends a task that was assigned to
// that worker and not yet ended, passes Check, and both occur.
func TestTaskOutcomesEndAssignedTasks(t *testing.T) {
	b := bustest.New(t)
	var stats demo.Stats
	cfg := demo.Config{Pools: 2, Workers: 3, Workflows: 1, Rate: 10_000, Events: 3000, Seed: 5}
	if err := demo.Run(t.Context(), cfg, events.NewPublisher(b), &stats); err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int{}
	for _, room := range []string{"pool:p1", "pool:p2"} {
		running := map[string]any{} // task id: its worker
		replay(t, b, room, func(name string, data map[string]any) {
			task := data["task_id"]
			switch name {
			case events.TaskAssigned:
				running[task.(string)] = data["worker_id"]
			case events.TaskCompleted, events.TaskFailed:
				w, ok := running[task.(string)]
				if !ok || w != data["worker_id"] {
					t.Fatalf("%s: %s of %v by %v, which was not running it (%v)", room, name, task, data["worker_id"], w)
				}
				delete(running, task.(string))
				outcomes[name]++
				raw, _ := json.Marshal(data)
				if err := events.Check(wire.MustRoom(room), name, raw); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	if outcomes[events.TaskCompleted] == 0 || outcomes[events.TaskFailed] == 0 {
		t.Fatalf("task outcomes %v in %d events, want both", outcomes, cfg.Events)
	}
	if stats.Counts()[events.TaskCompleted] != outcomes[events.TaskCompleted] {
		t.Fatalf("counted %d task.completed, stored %d", stats.Counts()[events.TaskCompleted], outcomes[events.TaskCompleted])
	}
}

// replay calls f with each event stored in room, in order.
func replay(t *testing.T, b *bus.Bus, room string, f func(name string, data map[string]any)) {
	t.Helper()
	_, err := b.Replay(t.Context(), wire.MustRoom(room), 0, 1<<40, func(ev *wire.Event) error {
		var data map[string]any
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			return err
		}
		f(ev.Name, data)
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", room, err)
	}
}
