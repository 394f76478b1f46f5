// Package bustest gives tests of the packages above the bus a real one: an
// embedded NATS server with JetStream, a connection, and the stream made.
package bustest

import (
	"testing"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/natstest"
)

// New returns a bus on a new embedded NATS server, closed when the test
// ends.
func New(t testing.TB) *bus.Bus {
	t.Helper()
	ns := natstest.RunServer(t)
	nc := natstest.Connect(t, ns.ClientURL())
	b, err := bus.New(nc, bus.Options{Logger: natstest.Quiet, Metrics: metrics.NewUnregistered()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := b.EnsureStream(t.Context()); err != nil {
		t.Fatal(err)
	}
	return b
}
