package server_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/wire"
)

// A client resuming over a backlog, reading a little slower than the node
// replays while live events arrive, gets its subscribe response: the
// hand-over does not overflow the queue the replay filled.
func TestResumeOverBacklogWithASlowLinkHandsOver(t *testing.T) {
	srv := startNode(t, nil, func(c *config.Serve) { c.SendQueueMessages = 8 })
	pub := newPublisher(t, srv.NATSURL())
	const room = "pool:backlog"
	pad := strings.Repeat("p", 20<<10)
	for i := range 300 + int(time.Now().UnixNano()%8) {
		pub.raw(room, []byte(fmt.Sprintf(`{"event":"e","data":{"n":%d,"pad":%q}}`, i, pad)))
	}
	go func() { // live traffic during the replay
		p2 := newPublisher(t, srv.NATSURL())
		for i := range 100 {
			time.Sleep(5 * time.Millisecond) // live traffic the client can keep up with: pacing, not a synchronisation
			p2.raw(room, []byte(fmt.Sprintf(`{"event":"e","data":{"n":%d,"pad":%q}}`, 1000+i, pad)))
		}
	}()
	w := dial(t, srv) // keeps the room live on the node
	subscribe(t, w, room, nil)
	c := dialSmallBuffer(t, srv)
	since := uint64(0)
	if err := c.Subscribe("s", room, &since); err != nil {
		t.Fatal(err)
	}
	events := 0
	for {
		time.Sleep(time.Millisecond) // a slow link, not a synchronisation
		m, err := c.Read(time.Now().Add(20 * time.Second))
		if err != nil {
			if ce, ok := err.(*client.CloseError); ok {
				t.Fatalf("closed with %d %q after %d replayed events, before the subscribe response", ce.Code, ce.Reason, events)
			}
			t.Fatal(err)
		}
		if m.Type == wire.TypeResponse {
			if events < 300 {
				t.Fatalf("response after %d events, want the 300 stored before it first", events)
			}
			return
		}
		events++
	}
}
