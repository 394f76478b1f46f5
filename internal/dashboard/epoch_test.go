package dashboard_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/events"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/relaytest"
	"github.com/roomcast/roomcast/internal/servertest"
	"github.com/roomcast/roomcast/internal/wire"
)

// The page is cut off while an operator recreates the stream (sequences
// start at 1 again) and the new stream passes the page's seq: it resumes
// with its seq and the epoch of its stream, gets the new stream's state
// (its pool room subscribes with state), draws the room again from it and
// the events after it, every event of the new stream, the ones at or
// below its old seq included, and says that the room lost events.
func TestDashboardResumesIntoARecreatedStream(t *testing.T) {
	tab := browse(t)
	ns := natstest.RunServer(t)
	node := servertest.Start(t, ns, nil)
	pub := events.NewPublisher(publishingBus(t, ns.ClientURL()))
	proxy := relaytest.Start(t, node.WSAddr())
	status := func(i int) {
		t.Helper()
		w := events.WorkerStatus{WorkerID: fmt.Sprintf("p1-w%d", i), Status: events.StatusBusy, PoolID: "p1"}
		if _, err := pub.WorkerStatusChanged(t.Context(), w); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		status(i)
	}
	run(t, tab, chromedp.Navigate("http://"+proxy.Addr()+"/?rooms="+poolRoom))
	watch(t, tab, "history drawn", panelShows(3, "3"))

	// A client of the node itself learns when the node has noticed the
	// new stream: it is closed with 4010.
	watcher, err := client.Dial(t.Context(), "ws://"+node.WSAddr()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	if err := watcher.Subscribe("w", poolRoom, nil); err != nil {
		t.Fatal(err)
	}

	proxy.Cut(true)
	watch(t, tab, "reconnecting shown", connIs("reconnecting"))
	js, err := jetstream.New(natstest.Connect(t, ns.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	natstest.RecreateStream(t, js, bus.DefaultStream, nil)
	for {
		_, err := watcher.Read(time.Now().Add(20 * time.Second))
		var ce *client.CloseError
		if errors.As(err, &ce) && ce.Code == wire.CloseStreamReset {
			break
		}
		if err != nil {
			t.Fatalf("the node did not close its client with 4010: %v", err)
		}
	}
	for i := range 5 {
		status(10 + i) // seqs 1 to 5 of the new stream
	}
	proxy.Allow()
	want := "resumed (0 missed events replayed), but 1 room lost events to retention or a recreated stream; 1 room redrawn from its state"
	watch(t, tab, "resumed into the new stream", func(st pageState) error {
		if st.Notice != want {
			return fmt.Errorf("notice %q, want %q", st.Notice, want)
		}
		if tiles := st.Panels[poolRoom].Tiles; len(tiles) != 5 || tiles["p1-w0"] != "" {
			return fmt.Errorf("tiles %v, want the new stream's 5 workers only", tiles)
		}
		return panelShows(3+5, "5")(st)
	})
}

// panelShows accepts a pool panel that is live, has shown events events in
// all, the last with seq, and dropped no duplicate.
func panelShows(events int, seq string) func(pageState) error {
	return func(st pageState) error {
		p := st.Panels[poolRoom]
		switch {
		case p == nil:
			return errors.New("no panel")
		case p.State != "live" || p.Dupes != 0 || p.Events != events || p.Seq != seq:
			return fmt.Errorf("panel %s with %d events to seq %s, %d dropped as duplicates; want live, %d to %s, none dropped",
				p.State, p.Events, p.Seq, p.Dupes, events, seq)
		}
		return nil
	}
}
