package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// A connection that keeps resuming a room from the start is paced once it
// read its budget from the stream (--replay-rate), and only it: another
// connection's resume of the same room, which would have waited for the
// paced one's read had it started it, goes through meanwhile.
func TestReplaysArePacedPerConnection(t *testing.T) {
	ns := natstest.RunServer(t)
	srv := startNode(t, ns, func(c *config.Serve) { c.ReplayRate = 1 }) // a budget of 4 events
	pub := newPublisher(t, ns.ClientURL())
	const room, n = "pool:paced", 300 // more than a room's tail holds
	for i := range n {
		pub.event(room, "e", i)
	}
	zero := uint64(0)
	greedy := dial(t, srv)
	if _, replay := subscribe(t, greedy, room, &zero); len(replay) != n {
		t.Fatalf("first resume: %d events, want %d", len(replay), n)
	}
	if err := greedy.Request(wire.EventUnsubscribe, "u", map[string]string{"channel": room}); err != nil {
		t.Fatal(err)
	}
	if m := read(t, greedy); m.Type != wire.TypeResponse || m.ID != "u" {
		t.Fatalf("got %+v, want the unsubscribe's answer", m)
	}
	if err := greedy.Subscribe("again", room, &zero); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		if v := value(scrape(t, srv.AdminAddr()), "roomcast_stream_reads_paced_total"); v < 1 {
			return fmt.Errorf("roomcast_stream_reads_paced_total %v", v)
		}
		return nil
	})
	if _, replay := subscribe(t, dial(t, srv), room, &zero); len(replay) != n {
		t.Fatalf("another connection's resume: %d events, want %d", len(replay), n)
	}
}
