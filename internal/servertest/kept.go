package servertest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/natstest"
)

// WaitKept waits until the deployment's state keeper has every event up
// to seq in the keyed state (its position record in the state stream,
// read through nc), so a test can push those events out of the room's
// history and still expect them in a subscribe with state.
func WaitKept(t testing.TB, nc *nats.Conn, seq uint64) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	WaitKeptWithin(t, js, seq, 20*time.Second)
}

// WaitKeptWithin is WaitKept through js, within timeout (benchmarks that
// store many events wait longer).
func WaitKeptWithin(t testing.TB, js jetstream.JetStream, seq uint64, timeout time.Duration) {
	t.Helper()
	natstest.WaitFor(t, timeout, func() error {
		st, err := js.Stream(t.Context(), bus.StateStreamName(bus.DefaultStream))
		if err != nil {
			return err
		}
		m, err := st.GetLastMsgForSubject(t.Context(), "roomcast.state.pos")
		if err != nil {
			return err
		}
		var pos struct{ Seq uint64 }
		if err := json.Unmarshal(m.Data, &pos); err != nil || pos.Seq < seq {
			return fmt.Errorf("keeper at %d (%v), want %d", pos.Seq, err, seq)
		}
		return nil
	})
}
