// Package bustest gives tests of the packages above the bus a real one: an
// embedded NATS server with JetStream, a connection, and the stream made.
package bustest

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/natstest"
)

// New returns a bus on a new embedded NATS server, closed when the test
// ends.
func New(t testing.TB) *bus.Bus {
	t.Helper()
	ns := natstest.RunServer(t)
	b := On(t, natstest.Connect(t, ns.ClientURL()))
	if err := b.EnsureStream(t.Context()); err != nil {
		t.Fatal(err)
	}
	return b
}

// On returns a bus on the connection nc (a worker's or an edge's view of
// a NATS the test started), closed when the test ends. It does not make
// the stream.
func On(t testing.TB, nc *nats.Conn) *bus.Bus {
	t.Helper()
	b, err := bus.New(nc, bus.Options{Logger: natstest.Quiet, Metrics: metrics.NewUnregistered()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}
