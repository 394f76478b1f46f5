// Package bustest gives tests of the packages above the bus a real one: an
// embedded NATS server with JetStream, a connection, and the stream made.
package bustest

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// New returns a bus on a new embedded NATS server, closed when the test
// ends.
func New(t testing.TB) *bus.Bus {
	t.Helper()
	b, _ := NewConn(t)
	return b
}

// NewConn is New with the bus's NATS connection, for tests that read
// what the stream stored as NATS keeps it (Stored).
func NewConn(t testing.TB) (*bus.Bus, *nats.Conn) {
	t.Helper()
	ns := natstest.RunServer(t)
	nc := natstest.Connect(t, ns.ClientURL())
	b := On(t, nc)
	if err := b.EnsureStream(t.Context()); err != nil {
		t.Fatal(err)
	}
	return b, nc
}

// Stored returns the message the stream (of the default name) stored at
// seq, headers and payload, read with a plain JetStream message get on
// nc: what a publisher left there, before any decoding of the bus's.
func Stored(t testing.TB, nc *nats.Conn, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(t.Context(), bus.DefaultStream)
	if err != nil {
		t.Fatalf("stream %s: %v", bus.DefaultStream, err)
	}
	m, err := s.GetMsg(t.Context(), seq)
	if err != nil {
		t.Fatalf("get message %d: %v", seq, err)
	}
	return m
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

// CheckKey checks a stored message's key headers say key (none for "")
// and deleted, and that its payload holds the event and its data alone:
// the key travels in the headers only (docs/protocol.md, "Keys").
func CheckKey(t testing.TB, m *jetstream.RawStreamMsg, key string, deleted bool) {
	t.Helper()
	var wantKey, wantDeleted []string
	if key != "" {
		wantKey = []string{key}
	}
	if deleted {
		wantDeleted = []string{"true"}
	}
	if got := m.Header.Values(wire.HeaderKey); !slices.Equal(got, wantKey) {
		t.Errorf("seq %d: %s %q, want %q", m.Sequence, wire.HeaderKey, got, wantKey)
	}
	if got := m.Header.Values(wire.HeaderKeyDeleted); !slices.Equal(got, wantDeleted) {
		t.Errorf("seq %d: %s %q, want %q", m.Sequence, wire.HeaderKeyDeleted, got, wantDeleted)
	}
	var payload map[string]json.RawMessage
	if err := json.Unmarshal(m.Data, &payload); err != nil || payload["event"] == nil || len(payload) > 2 || len(payload) == 2 && payload["data"] == nil {
		t.Errorf("seq %d: payload %s, want the event and its data only", m.Sequence, m.Data)
	}
}
