package server_test

import (
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/wire"
)

// Shutdown sends server.draining to every client, closes each with 1001,
// and returns within the drain timeout.
func TestShutdownDrainsClients(t *testing.T) {
	srv := startNode(t, nil, func(c *config.Serve) { c.DrainTimeout = 4 * time.Second })
	clients := []*client.Conn{dial(t, srv), dial(t, srv), dial(t, srv)}
	subscribe(t, clients[0], "pool:drain", nil)

	start := time.Now()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		srv.Shutdown()
	}()
	for i, c := range clients {
		got := expectClose(t, c, int(wire.CloseGoingAway))
		if len(got) != 1 || got[0].Type != wire.TypeEvent || got[0].Event != wire.EventDraining {
			t.Fatalf("client %d before the close: %+v, want one server.draining event", i, got)
		}
	}
	// Bounded, not fast: the drain timeout plus the NATS shutdown, with
	// room for a busy machine.
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatalf("Shutdown did not return within %s of a 4s drain timeout", time.Since(start))
	}
}
