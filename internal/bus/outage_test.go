package bus

import (
	"context"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// Replay ends with an error, within its context, when NATS goes away in
// the middle of it. The room spans three batches: the first is read, the
// second may already have been read ahead when NATS goes, the third
// cannot be.
func TestReplayEndsWhenNATSGoesAway(t *testing.T) {
	ns := natstest.RunServer(t)
	nc := natstest.Connect(t, ns.ClientURL())
	b, err := New(nc, Options{Logger: natstest.Quiet, Metrics: metrics.NewUnregistered()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.EnsureStream(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := wire.MustRoom("pool:outage")
	var last uint64
	const events = 2*ReplayBatch + 10
	for i := range events {
		last = b.mustPublish(t, r, i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	done := make(chan error, 1)
	n := 0
	go func() {
		_, err := b.Replay(ctx, r, 0, last, func(*wire.Event) error {
			n++
			if n == 1 {
				ns.Shutdown()
			}
			return nil
		})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("Replay succeeded after %d of %d events with NATS gone", n, events)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("Replay with a 2s context still running after 30s (%d events)", n)
	}
}
