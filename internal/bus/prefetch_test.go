package bus

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomcast/roomcast/internal/wire"
)

// A replay over several batches, each asked for while the one before is
// delivered, delivers every event once, in order, and asks for no batch
// twice.
func TestReplayReadsAheadInOrder(t *testing.T) {
	b := newBus(t, StreamConfig{})
	r := wire.MustRoom("pool:ahead")
	var seqs []uint64
	for i := range 3*ReplayBatch + 7 {
		seqs = append(seqs, b.mustPublish(t, r, i))
	}
	calls := testutil.ToFloat64(b.m.StreamCalls.WithLabelValues("direct_get"))
	var got []uint64
	intact, err := b.Replay(t.Context(), r, seqs[0], seqs[len(seqs)-1], func(ev *wire.Event) error {
		if n := len(got); n > 0 && ev.Seq <= got[n-1] {
			t.Fatalf("seq %d after %d", ev.Seq, got[n-1])
		}
		got = append(got, ev.Seq)
		return nil
	})
	if err != nil || !intact || len(got) != len(seqs)-1 || got[0] != seqs[1] {
		t.Fatalf("replayed %d events (intact %v, %v), want %d from %d", len(got), intact, err, len(seqs)-1, seqs[1])
	}
	// Four batches of ReplayBatch new events each; none asked for twice.
	if n := testutil.ToFloat64(b.m.StreamCalls.WithLabelValues("direct_get")) - calls; n != 4 {
		t.Fatalf("%v direct gets, want 4", n)
	}
}

// A replay stopped by its callback abandons the batch it asked for ahead:
// every read slot is free again soon after.
func TestReplayStoppedEarlyFreesItsReadAhead(t *testing.T) {
	b := newBus(t, StreamConfig{})
	r := wire.MustRoom("pool:stop")
	var last uint64
	for i := range 2*ReplayBatch + 3 {
		last = b.mustPublish(t, r, i)
	}
	stop := errors.New("stop")
	n := 0
	_, err := b.Replay(t.Context(), r, 0, last, func(*wire.Event) error {
		if n++; n == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Replay returned %v, want the callback's error", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.reads.held() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d read slots still taken after the replay ended", b.reads.held())
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, with a deadline
	}
}
