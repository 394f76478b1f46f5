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
	checkReplayThroughOutage(t, "pool:outage", 2*ReplayBatch+10, nil)
}

// checkReplayThroughOutage stores events events in room, has NATS go away
// after the first is replayed, and checks the replay ends with an error
// within its context, never a silent gap. setup changes the bus first.
func checkReplayThroughOutage(t *testing.T, room string, events int, setup func(*Bus)) {
	t.Helper()
	ns := natstest.RunServer(t)
	nc := natstest.Connect(t, ns.ClientURL())
	b, err := New(nc, Options{Logger: natstest.Quiet, Metrics: metrics.NewUnregistered()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.EnsureStream(t.Context()); err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(b)
	}
	r := wire.MustRoom(room)
	var last uint64
	for i := range events {
		last = b.mustPublish(t, r, i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	done := make(chan error, 1)
	n := 0
	go func() {
		_, err := b.Replay(ctx, r, 0, last, func(*wire.Event) error {
			if n++; n == 1 {
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
		if n >= events {
			t.Fatalf("all %d events delivered: NATS went too late to test anything", n)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("Replay with a 3s context still running after 30s (%d events)", n)
	}
}
