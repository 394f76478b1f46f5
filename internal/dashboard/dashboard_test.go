package dashboard_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/roomcast/roomcast/internal/bus/bustest"
	"github.com/roomcast/roomcast/internal/demo"
	"github.com/roomcast/roomcast/internal/events"
	"github.com/roomcast/roomcast/internal/relaytest"
	"github.com/roomcast/roomcast/internal/servertest"
)

const (
	poolRoom  = "pool:p1"
	flowRoom  = "workflow:w1"
	runsShown = 12 // views.js: the timeline's length
)

// The page, in a real browser, draws a pool of 200 workers and a workflow
// from their retained history, follows them live at 50 events a second,
// and after its connection is cut (a reset, then refused while events go
// on) reconnects, resumes with since, says how many events it missed, and
// shows every one of them: the page ends up equal to the stream.
func TestDashboardFollowsAPoolAndResumesAfterACut(t *testing.T) {
	tab := browse(t)
	node := servertest.Start(t, nil, nil)
	pub := events.NewPublisher(publishingBus(t, node.NATSURL()))
	// Workers may not read the stream (issue 17): the truth is read
	// through the node's own connection.
	b := bustest.On(t, node.NATSConn())
	proxy := relaytest.Start(t, node.WSAddr())

	sim := demo.Config{Pools: 1, Workers: 200, Workflows: 1, Rate: 10_000, Events: 600, Seed: 3}
	if err := demo.Run(t.Context(), sim, pub, &demo.Stats{}); err != nil {
		t.Fatal(err)
	}
	run(t, tab, chromedp.Navigate("http://"+proxy.Addr()+"/?rooms="+poolRoom+","+flowRoom))
	pool, flow := readTruth(t, b, poolRoom), readTruth(t, b, flowRoom)
	watch(t, tab, "history drawn", showsTruth(pool, flow))
	if len(pool.workers) < 190 { // the simulation scales the pool a little
		t.Fatalf("the simulation left %d workers, want about 200", len(pool.workers))
	}

	// Live, at the rate the page must keep up with. Long tasks (main
	// thread busy over 50 ms) are counted and logged, not asserted: the
	// machine is shared.
	eval[bool](t, tab, `window.longTasks = []; new PerformanceObserver((l) => window.longTasks.push(...l.getEntries().map((e) => e.duration))).observe({type: "longtask"}); true`)
	sim = demo.Config{Pools: 1, Workers: 200, Workflows: 1, Rate: 50, Events: 150, Seed: 4}
	if err := demo.Run(t.Context(), sim, pub, &demo.Stats{}); err != nil {
		t.Fatal(err)
	}
	pool, flow = readTruth(t, b, poolRoom), readTruth(t, b, flowRoom)
	watch(t, tab, "live events drawn", showsTruth(pool, flow))
	long := eval[[]float64](t, tab, `window.longTasks`)
	t.Logf("live at 50 events/s with %d workers: %d long tasks %v ms", len(pool.workers), len(long), long)

	// Cut: the page must notice, and miss what is published meanwhile.
	proxy.Cut(true)
	watch(t, tab, "reconnecting shown", connIs("reconnecting"))
	missed := publishWhileCut(t, pub)
	proxy.Allow()
	pool, flow = readTruth(t, b, poolRoom), readTruth(t, b, flowRoom)
	want := fmt.Sprintf("resumed (%d missed events replayed)", missed)
	st := watch(t, tab, "resumed", func(st pageState) error {
		if st.Notice != want {
			return fmt.Errorf("notice %q, want %q", st.Notice, want)
		}
		return showsTruth(pool, flow)(st)
	})
	for i := 1; i <= 5; i++ {
		if id := fmt.Sprintf("cut-t%d", i); !slices.Contains(st.Panels[poolRoom].Tasks, id) {
			t.Errorf("task %s, published while cut, not among the latest tasks %v", id, st.Panels[poolRoom].Tasks)
		}
	}
	if st.Conn != "live" {
		t.Errorf("connection shown as %q after the resume", st.Conn)
	}
	screenshot(t, tab, "dashboard.png")
}

// publishWhileCut publishes tasks, statuses and a workflow run's start to
// the two rooms and returns how many events it stored.
func publishWhileCut(t *testing.T, pub *events.Publisher) int {
	t.Helper()
	ctx := t.Context()
	n := 0
	check := func(_ uint64, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	for i := 1; i <= 5; i++ {
		worker := fmt.Sprintf("p1-w%d", i)
		check(pub.TaskAssigned(ctx, events.TaskAssignment{TaskID: fmt.Sprintf("cut-t%d", i), WorkerID: worker, PoolID: "p1"}))
		check(pub.WorkerStatusChanged(ctx, events.WorkerStatus{WorkerID: worker, Status: events.StatusError, PoolID: "p1"}))
	}
	check(pub.WorkflowStarted(ctx, events.WorkflowStart{WorkflowID: "w1", Adapter: "llm", Prompt: "while cut"}))
	check(pub.WorkflowStageCompleted(ctx, events.WorkflowStage{WorkflowID: "w1", StageName: "plan"}))
	return n
}

// showsTruth accepts a page that draws exactly what the stream holds.
func showsTruth(pool, flow truth) func(pageState) error {
	return func(st pageState) error {
		p, f := st.Panels[poolRoom], st.Panels[flowRoom]
		if p == nil || f == nil {
			return errors.New("a room's panel is missing")
		}
		for _, c := range []struct {
			room  string
			panel *panelState
			truth truth
		}{{poolRoom, p, pool}, {flowRoom, f, flow}} {
			switch {
			case c.panel.State != "live":
				return fmt.Errorf("%s is %q", c.room, c.panel.State)
			case c.panel.Dupes != 0:
				return fmt.Errorf("%s dropped %d duplicates", c.room, c.panel.Dupes)
			case c.panel.Events != c.truth.events || c.panel.Seq != strconv.FormatUint(c.truth.lastSeq, 10):
				return fmt.Errorf("%s shows %d events to seq %s, the stream holds %d to %d",
					c.room, c.panel.Events, c.panel.Seq, c.truth.events, c.truth.lastSeq)
			}
		}
		if !maps.Equal(p.Tiles, pool.workers) {
			return fmt.Errorf("tiles differ from the stream: %d tiles, %d workers", len(p.Tiles), len(pool.workers))
		}
		if p.Queue != strconv.Itoa(pool.queue) {
			return fmt.Errorf("queue %s, the stream says %d", p.Queue, pool.queue)
		}
		wantRuns := flow.runs[:min(len(flow.runs), runsShown)]
		if !slices.EqualFunc(f.Runs, wantRuns, func(a, b runState) bool {
			return a.ID == b.ID && a.Outcome == b.Outcome && slices.Equal(a.Stages, b.Stages)
		}) {
			return fmt.Errorf("timeline %v, the stream's runs %v", f.Runs, wantRuns)
		}
		return nil
	}
}
