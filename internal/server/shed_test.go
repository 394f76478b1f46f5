package server_test

import (
	"errors"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/wire"
)

// Shed closes exactly the number asked, each with a 4012 close frame and
// its reason, and never one that is closing already: asked for more than
// remain open, it closes the rest and says how many.
func TestShedClosesExactlyWithAFrame(t *testing.T) {
	srv := startNode(t, nil, nil)
	const total, room = 10, "pool:shed"
	clients := make([]*client.Conn, total)
	for i := range clients {
		clients[i] = dial(t, srv)
		subscribe(t, clients[i], room, nil)
	}
	pub := newPublisher(t, srv.NATSURL())
	seq := pub.event(room, "e", 1)
	for _, c := range clients { // delivered everywhere before the shed
		if m := readEvents(t, c, 1)[0]; m.Seq != seq {
			t.Fatalf("seq %d, want %d", m.Seq, seq)
		}
	}

	if got := srv.Shed(3); got != 3 {
		t.Fatalf("Shed(3) = %d", got)
	}
	// The 3 are closing (their close frames may still be on the way):
	// asked for 20, the node closes the 7 others only.
	if got := srv.Shed(20); got != total-3 {
		t.Fatalf("Shed(20) after Shed(3) = %d, want %d", got, total-3)
	}
	for i, c := range clients {
		_, err := c.Read(time.Now().Add(10 * time.Second))
		var ce *client.CloseError
		if !errors.As(err, &ce) || ce.Code != wire.CloseRebalance || ce.Reason != wire.ReasonRebalance || !client.ReconnectAtOnce(err) {
			t.Fatalf("client %d: %v, want a close frame 4012 %q", i, err, wire.ReasonRebalance)
		}
	}
	if got := srv.Shed(1); got != 0 {
		t.Fatalf("Shed(1) on a node with no connection = %d", got)
	}
}
