package dashboard_test

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/roomcast/roomcast/internal/bus/bustest"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/events"
	"github.com/roomcast/roomcast/internal/relaytest"
	"github.com/roomcast/roomcast/internal/servertest"
)

// A pool's page shows every worker, also one whose only event the room's
// history no longer holds: it subscribes with state. After a resume that
// lost events it draws the room again from the state, applying nothing
// twice, and a worker.removed (which ends the worker's key) takes its
// tile away.
func TestDashboardShowsAWorkerOlderThanTheHistory(t *testing.T) {
	tab := browse(t)
	node := servertest.Start(t, nil, func(c *config.Serve) { c.RetentionMaxPerRoom = 3 })
	pub := events.NewPublisher(publishingBus(t, node.NATSURL()))
	proxy := relaytest.Start(t, node.WSAddr())
	ctx := t.Context()
	check := func(seq uint64, err error) uint64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	// pushOut publishes unkeyed events, enough to push the room's
	// earlier events out of its history, once the keeper has those.
	pushOut := func(after uint64) {
		t.Helper()
		servertest.WaitKept(t, node.NATSConn(), after)
		var last uint64
		for i := range 4 {
			last = check(pub.PoolScaling(ctx, events.Scaling{PoolID: "p1", EventType: events.ScaledUp, Details: map[string]any{"workers": i}}))
		}
		servertest.WaitKept(t, node.NATSConn(), last)
	}
	check(pub.TaskAssigned(ctx, events.TaskAssignment{TaskID: "t1", WorkerID: "p1-old", PoolID: "p1"}))
	pushOut(check(pub.WorkerStatusChanged(ctx, events.WorkerStatus{WorkerID: "p1-old", Status: events.StatusIdle, PoolID: "p1"})))
	if h := readTruth(t, bustest.On(t, node.NATSConn()), poolRoom); len(h.workers) != 0 || h.events != 3 {
		t.Fatalf("the room's history holds %d events, workers %v; want 3 and none", h.events, h.workers)
	}

	run(t, tab, chromedp.Navigate("http://"+proxy.Addr()+"/?rooms="+poolRoom))
	watch(t, tab, "the older worker drawn", tilesAre(map[string]string{"p1-old": "idle"}))
	check(pub.TaskCompleted(ctx, events.TaskOutcome{TaskID: "t1", WorkerID: "p1-old", PoolID: "p1", Duration: 5 * time.Millisecond}))
	watchPool(t, tab, "the task's outcome", func(st poolPage) error {
		if st.Done != "1" {
			return fmt.Errorf("%s done", st.Done)
		}
		return nil
	})

	// Cut off while the room's history moves past the page's seq: the
	// resume gets the state, which the page draws instead of adding to.
	proxy.Cut(true)
	watch(t, tab, "reconnecting shown", connIs("reconnecting"))
	pushOut(check(pub.WorkerStatusChanged(ctx, events.WorkerStatus{WorkerID: "p1-new", Status: events.StatusBusy, PoolID: "p1"})))
	proxy.Allow()
	watch(t, tab, "redrawn from the state", func(st pageState) error {
		if !strings.HasSuffix(st.Notice, "1 room redrawn from its state") {
			return fmt.Errorf("notice %q", st.Notice)
		}
		return tilesAre(map[string]string{"p1-old": "idle", "p1-new": "busy"})(st)
	})
	st := watchPool(t, tab, "live again", func(st poolPage) error {
		if st.State != "live" {
			return fmt.Errorf("panel %q", st.State)
		}
		return nil
	})
	if st.Done != "1" || len(st.Tasks) != 1 || st.Tasks[0].Task != "t1" || st.Tasks[0].Outcome != "completed" {
		t.Fatalf("after the redraw: %s done, tasks %+v; want t1's one completion", st.Done, st.Tasks)
	}
	screenshot(t, tab, "dashboard-state.png")

	check(pub.WorkerRemoved(ctx, events.WorkerRemoval{WorkerID: "p1-old", PoolID: "p1"}))
	watch(t, tab, "the removed worker's tile gone", tilesAre(map[string]string{"p1-new": "busy"}))
}

// tilesAre accepts a page whose pool panel is live with exactly these
// tiles (worker → status).
func tilesAre(want map[string]string) func(pageState) error {
	return func(st pageState) error {
		p := st.Panels[poolRoom]
		switch {
		case p == nil:
			return fmt.Errorf("no panel")
		case p.State != "live" || p.Dupes != 0:
			return fmt.Errorf("panel %q, %d duplicates", p.State, p.Dupes)
		case !maps.Equal(p.Tiles, want):
			return fmt.Errorf("tiles %v, want %v", p.Tiles, want)
		}
		return nil
	}
}
