package room

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// The node's account of catch-up memory (roomcast_catchup_bytes) follows
// a tail past its steady byte bound and a seed's window as they grow,
// trim, hand over and reset, and is back at zero when no catch-up is
// under way: an account that drifted would, over days, hold every read to
// the steady bounds, or none.
func TestCatchUpMemoryIsAccountedAndGivenBack(t *testing.T) {
	m := metrics.NewUnregistered()
	h := New(Options{Source: &flakySource{}, Logger: natstest.Quiet, Metrics: m,
		TailEvents: 1000, TailBytes: 1000, CatchUpTailEvents: 1000, CatchUpTailBytes: 20_000})
	defer h.Close()
	rm := newRoom(wire.MustRoom("pool:acct"), m)
	rm.ready.Fire()
	frame := func(seq uint64) *wire.Frame {
		return wire.EventFrame(&wire.Event{Room: rm.name, Seq: seq, Name: "e", Time: time.Now(),
			Data: []byte(`{"pad":"` + strings.Repeat("x", 90) + `"}`)})
	}
	gauge := func() int { return int(testutil.ToFloat64(m.CatchUpBytes)) }
	check := func(when string, want int) {
		t.Helper()
		if got := gauge(); got != want {
			t.Fatalf("%s: roomcast_catchup_bytes %d, want %d", when, got, want)
		}
	}
	excess := func() int { return max(rm.tailBytes-h.tail.bytes, 0) }

	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.catchingUp = 1 // a resume is under way: the tail grows past 1000 bytes
	seq := uint64(0)
	for range 100 {
		seq++
		rm.remember(frame(seq), h.tail)
	}
	if excess() == 0 || rm.tailBytes > 20_000 {
		t.Fatalf("tail of %d bytes: want it past its steady bound, within the catch-up one", rm.tailBytes)
	}
	check("grown for a catch-up", excess())

	// A seed's window counts while it holds frames, and hands them over.
	w := &window{seed: &seed{done: make(chan struct{})}, bounds: h.tail}
	for i := range 10 {
		w.add(frame(uint64(1000 + i)))
	}
	check("a window of 10 frames", excess()+w.bytes)
	w.pop()
	check("a frame sent from the window", excess()+w.bytes)
	w.handedOver()
	check("the window handed over", excess())

	rm.catchingUp = 0 // the resume is done: back to the steady bound
	rm.trimTail(h.tail)
	check("trimmed to the steady bound", 0)

	rm.catchingUp = 1
	for range 30 {
		seq++
		rm.remember(frame(seq), h.tail)
	}
	check("grown again", excess())
	rm.forgetTail(h.tail) // a stream reset, a hole, a teardown
	check("forgotten", 0)
}
