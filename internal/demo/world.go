package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/roomcast/roomcast/internal/events"
)

// world is the simulated state: pools of workers and running workflows.
// It is used by one goroutine.
type world struct {
	cfg     Config
	rng     *rand.Rand
	pools   []*pool
	flows   []*flow
	pending []event // events that follow from the last one, sent first
}

type pool struct {
	id         string
	workers    []*worker
	queue      int
	nextWorker int
	nextTask   int
}

type worker struct {
	id, status string
	task       string    // the task it runs, "" for none
	started    time.Time // when it was given task
}

type flow struct {
	id    string
	stage int // stages completed
}

// stages every simulated workflow goes through.
var stages = []string{"plan", "fetch", "analyse", "summarise"}

// failOneIn: one stage in this many fails, and with it its run (about one
// run in five).
const failOneIn = 18

// event is one event to publish.
type event struct {
	name    string
	publish func(ctx context.Context, p *events.Publisher) error
}

func newWorld(cfg Config) *world {
	w := &world{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed>>1|1))}
	for i := range cfg.Pools {
		pl := &pool{id: fmt.Sprintf("p%d", i+1), queue: w.rng.IntN(20)}
		for range cfg.Workers {
			pl.workers = append(pl.workers, pl.newWorker())
		}
		w.pools = append(w.pools, pl)
		w.pending = append(w.pending, w.scaling(pl, events.ScaledUp, map[string]any{"workers": len(pl.workers)}), w.poolStatus(pl))
		for _, wk := range pl.workers {
			w.pending = append(w.pending, w.workerStatus(pl, wk))
		}
	}
	for i := range cfg.Workflows {
		fl := &flow{id: fmt.Sprintf("w%d", i+1)}
		w.flows = append(w.flows, fl)
		w.pending = append(w.pending, w.startFlow(fl))
	}
	return w
}

func (pl *pool) newWorker() *worker {
	pl.nextWorker++
	return &worker{id: fmt.Sprintf("%s-w%d", pl.id, pl.nextWorker), status: events.StatusIdle}
}

// next is the next event: one that follows from the last, or a new step.
func (w *world) next() event {
	if len(w.pending) > 0 {
		ev := w.pending[0]
		w.pending = w.pending[1:]
		return ev
	}
	pl := w.pools[w.rng.IntN(len(w.pools))]
	switch r := w.rng.IntN(100); {
	case r < 40:
		return w.flipWorker(pl)
	case r < 65:
		return w.assignTask(pl)
	case r < 77:
		pl.queue = max(0, pl.queue+w.rng.IntN(7)-3)
		return w.poolStatus(pl)
	case r < 82:
		return w.scale(pl)
	case len(w.flows) > 0:
		return w.stepFlow()
	default:
		return w.flipWorker(pl)
	}
}

// flipWorker moves a worker on: one running a task ends it, completed
// (idle) or now and then failed (error); an idle one turns busy (now and
// then error); busy and error without a task go back to idle.
func (w *world) flipWorker(pl *pool) event {
	wk := pl.workers[w.rng.IntN(len(pl.workers))]
	switch {
	case wk.task != "":
		return w.endTask(pl, wk, w.rng.IntN(8) == 0)
	case wk.status != events.StatusIdle:
		wk.status = events.StatusIdle
	case w.rng.IntN(10) == 0:
		wk.status = events.StatusError
	default:
		wk.status = events.StatusBusy
	}
	return w.workerStatus(pl, wk)
}

// endTask ends wk's task: task.completed and the worker idle, or
// task.failed and the worker in error.
func (w *world) endTask(pl *pool, wk *worker, failed bool) event {
	d := events.TaskOutcome{TaskID: wk.task, WorkerID: wk.id, PoolID: pl.id, Duration: w.cfg.Now().Sub(wk.started), Timestamp: w.cfg.Now()}
	wk.task = ""
	name, publish := events.TaskCompleted, (*events.Publisher).TaskCompleted
	wk.status = events.StatusIdle
	if failed {
		d.Error = "worker lost its adapter connection"
		name, publish = events.TaskFailed, (*events.Publisher).TaskFailed
		wk.status = events.StatusError
	}
	w.pending = append(w.pending, w.workerStatus(pl, wk))
	return event{name, func(ctx context.Context, p *events.Publisher) error {
		_, err := publish(p, ctx, d)
		return err
	}}
}

// assignTask gives a task from the queue to a worker without one, which
// turns busy; with every worker on a task, the queue grows instead.
func (w *world) assignTask(pl *pool) event {
	wk := pl.workers[w.rng.IntN(len(pl.workers))]
	if wk.task != "" {
		pl.queue++
		return w.poolStatus(pl)
	}
	pl.nextTask++
	pl.queue = max(0, pl.queue-1)
	wk.task, wk.started = fmt.Sprintf("%s-t%d", pl.id, pl.nextTask), w.cfg.Now()
	wk.status = events.StatusBusy
	w.pending = append(w.pending, w.workerStatus(pl, wk))
	d := events.TaskAssignment{TaskID: wk.task, WorkerID: wk.id, PoolID: pl.id, Timestamp: wk.started,
		Metadata: map[string]any{"priority": []string{"low", "normal", "high"}[w.rng.IntN(3)]}}
	return event{events.TaskAssigned, func(ctx context.Context, p *events.Publisher) error {
		_, err := p.TaskAssigned(ctx, d)
		return err
	}}
}

// scale adds or removes a worker, within half and twice the start size.
func (w *world) scale(pl *pool) event {
	grow := len(pl.workers) <= max(1, w.cfg.Workers/2) || len(pl.workers) < 2*w.cfg.Workers && w.rng.IntN(2) == 0
	if grow {
		wk := pl.newWorker()
		pl.workers = append(pl.workers, wk)
		w.pending = append(w.pending, w.workerStatus(pl, wk), w.poolStatus(pl))
		return w.scaling(pl, events.WorkerAdded, map[string]any{"worker_id": wk.id})
	}
	wk := pl.workers[len(pl.workers)-1]
	if wk.task != "" {
		return w.endTask(pl, wk, false) // finish its task first; removed on a later step
	}
	pl.workers = pl.workers[:len(pl.workers)-1]
	w.pending = append(w.pending, w.poolStatus(pl))
	return w.scaling(pl, events.WorkerRemoved, map[string]any{"worker_id": wk.id})
}

// stepFlow moves a workflow's run on: its next stage completes, or now
// and then fails, which fails the run; a run whose stages all completed
// completes. Either way the next run starts.
func (w *world) stepFlow() event {
	fl := w.flows[w.rng.IntN(len(w.flows))]
	if fl.stage < len(stages) {
		stage := stages[fl.stage]
		if w.rng.IntN(failOneIn) == 0 {
			w.pending = append(w.pending, w.startFlow(fl))
			d := events.WorkflowFailure{WorkflowID: fl.id, StageName: stage, Error: "stage " + stage + ": adapter timed out"}
			return event{events.WorkflowFailed, func(ctx context.Context, p *events.Publisher) error {
				_, err := p.WorkflowFailed(ctx, d)
				return err
			}}
		}
		fl.stage++
		d := events.WorkflowStage{WorkflowID: fl.id, StageName: stage}
		return event{events.WorkflowStageCompleted, func(ctx context.Context, p *events.Publisher) error {
			_, err := p.WorkflowStageCompleted(ctx, d)
			return err
		}}
	}
	// The workflow runs again, in the same room: a dashboard watching
	// workflow:w1 sees run after run.
	w.pending = append(w.pending, w.startFlow(fl))
	d := events.WorkflowResult{WorkflowID: fl.id, Result: map[string]any{"stages": len(stages), "summary": "done"}}
	return event{events.WorkflowCompleted, func(ctx context.Context, p *events.Publisher) error {
		_, err := p.WorkflowCompleted(ctx, d)
		return err
	}}
}

// startFlow starts a run of fl from its first stage.
func (w *world) startFlow(fl *flow) event {
	fl.stage = 0
	d := events.WorkflowStart{WorkflowID: fl.id, Adapter: "llm", Prompt: "summarise the pool's day"}
	return event{events.WorkflowStarted, func(ctx context.Context, p *events.Publisher) error {
		_, err := p.WorkflowStarted(ctx, d)
		return err
	}}
}

func (w *world) workerStatus(pl *pool, wk *worker) event {
	d := events.WorkerStatus{WorkerID: wk.id, Status: wk.status, PoolID: pl.id}
	return event{events.WorkerStatusChanged, func(ctx context.Context, p *events.Publisher) error {
		_, err := p.WorkerStatusChanged(ctx, d)
		return err
	}}
}

func (w *world) poolStatus(pl *pool) event {
	d := events.PoolStatus{PoolID: pl.id, Status: events.PoolSnapshot{WorkerCount: len(pl.workers), QueueSize: pl.queue}}
	return event{events.PoolStatusChanged, func(ctx context.Context, p *events.Publisher) error {
		_, err := p.PoolStatusChanged(ctx, d)
		return err
	}}
}

func (w *world) scaling(pl *pool, kind string, details map[string]any) event {
	d := events.Scaling{PoolID: pl.id, EventType: kind, Timestamp: w.cfg.Now(), Details: details}
	return event{events.PoolScaling, func(ctx context.Context, p *events.Publisher) error {
		_, err := p.PoolScaling(ctx, d)
		return err
	}}
}
