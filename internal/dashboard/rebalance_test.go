package dashboard_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/events"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/servertest"
)

// A scale-out, as the page lives it: its node holds more than its share
// and sheds the page's connection with 4012 while events go on; the page
// reconnects at once (to the node that served it: behind a load balancer,
// to any node), resumes with nothing missing nor repeated, and says why it
// reconnected. The first node is kept over its share by a crowd that
// returns to it whenever shed, so it goes on shedding at random until the
// page is picked. (No relay between page and node here: the relay resets
// the page's socket when the node closes its end, and a reset after the
// close frame makes Chromium report 1006 instead of the frame's code.)
func TestDashboardReconnectsAtOnceWhenItsNodeRebalances(t *testing.T) {
	tab := browse(t)
	ns := natstest.RunServer(t)
	named := func(name string) func(*config.Serve) { return func(c *config.Serve) { c.ServerName = name } }
	first := servertest.Start(t, ns, named("first"))
	servertest.Start(t, ns, named("second")) // idle: the first is over its share
	b := publishingBus(t, ns.ClientURL())
	pub := events.NewPublisher(b)

	n := 0
	status := func() {
		t.Helper()
		n++
		if _, err := pub.WorkerStatusChanged(t.Context(), events.WorkerStatus{WorkerID: fmt.Sprintf("p1-w%d", n), Status: events.StatusBusy, PoolID: "p1"}); err != nil {
			t.Fatal(err)
		}
	}
	status()
	run(t, tab, chromedp.Navigate("http://"+first.WSAddr()+"/?rooms="+poolRoom))
	watch(t, tab, "first node's events", func(st pageState) error {
		if p := st.Panels[poolRoom]; p == nil || p.Tiles["p1-w1"] != events.StatusBusy {
			return fmt.Errorf("panel %+v", p)
		}
		return nil
	})

	stopCrowd := servertest.Crowd(t, servertest.WSURL(first), 20)
	watch(t, tab, "shed by the rebalancing", func(st pageState) error {
		status() // events go on while the first node sheds
		if !strings.HasPrefix(st.Notice, "rebalanced: resumed (") {
			return fmt.Errorf("notice %q", st.Notice)
		}
		return nil
	})
	stopCrowd()
	status()
	pool := readTruth(t, b, poolRoom)
	watch(t, tab, "resumed", func(st pageState) error {
		p := st.Panels[poolRoom]
		switch {
		case st.Conn != "live" || p == nil:
			return fmt.Errorf("connection %q", st.Conn)
		case p.Events != pool.events || p.Dupes != 0 || len(p.Tiles) != len(pool.workers):
			return fmt.Errorf("%d events, %d duplicates, %d tiles; the stream holds %d events, %d workers",
				p.Events, p.Dupes, len(p.Tiles), pool.events, len(pool.workers))
		}
		return nil
	})
}
