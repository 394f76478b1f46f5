package dashboard_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/roomcast/roomcast/internal/events"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/relaytest"
	"github.com/roomcast/roomcast/internal/servertest"
)

// A rollout, as the page lives it: its node drains (server.draining, then
// 1001) while events go on, and the page moves at once to another node of
// the same NATS and resumes there with nothing missing.
func TestDashboardMovesToAnotherNodeWhenItsNodeDrains(t *testing.T) {
	tab := browse(t)
	ns := natstest.RunServer(t)
	first := servertest.Start(t, ns, nil)
	second := servertest.Start(t, ns, nil)
	b := publishingBus(t, ns.ClientURL())
	pub := events.NewPublisher(b)
	proxy := relaytest.Start(t, first.WSAddr())

	status := func(worker, state string) {
		t.Helper()
		if _, err := pub.WorkerStatusChanged(t.Context(), events.WorkerStatus{WorkerID: worker, Status: state, PoolID: "p1"}); err != nil {
			t.Fatal(err)
		}
	}
	status("p1-w1", events.StatusBusy)
	run(t, tab, chromedp.Navigate("http://"+proxy.Addr()+"/?rooms="+poolRoom))
	watch(t, tab, "first node's events", func(st pageState) error {
		if p := st.Panels[poolRoom]; p == nil || p.Tiles["p1-w1"] != events.StatusBusy {
			return fmt.Errorf("panel %+v", p)
		}
		return nil
	})

	proxy.Retarget(second.WSAddr())
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		first.Shutdown()
	}()
	for i := 2; i <= 6; i++ { // during and after the drain
		status(fmt.Sprintf("p1-w%d", i), events.StatusError)
	}
	<-drained
	pool := readTruth(t, b, poolRoom)
	watch(t, tab, "resumed on the second node", func(st pageState) error {
		p := st.Panels[poolRoom]
		switch {
		case st.Conn != "live" || p == nil:
			return fmt.Errorf("connection %q", st.Conn)
		case !strings.HasPrefix(st.Notice, "resumed ("):
			return fmt.Errorf("notice %q", st.Notice)
		case p.Events != pool.events || p.Dupes != 0 || len(p.Tiles) != len(pool.workers):
			return fmt.Errorf("%d events, %d duplicates, tiles %v; the stream holds %d events, workers %v",
				p.Events, p.Dupes, p.Tiles, pool.events, pool.workers)
		}
		for w, s := range pool.workers {
			if p.Tiles[w] != s {
				return fmt.Errorf("tile %s is %q, the stream says %q", w, p.Tiles[w], s)
			}
		}
		return nil
	})
}
