package room

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// The node's account of tail memory (roomcast_tail_bytes) is the sum of
// its rooms' tails as they grow, trim and reset, and goes back to zero
// when the rooms go: an account that drifts would, over days, hold every
// catch-up to the steady bounds, or none.
func TestTailMemoryIsAccountedAndGivenBack(t *testing.T) {
	f := newFixtureWith(t, bus.StreamConfig{}, func(o *Options) { o.TailEvents = 8 })
	rooms := make([]wire.Room, 4)
	members := make([]*recorder, len(rooms))
	for i := range rooms {
		rooms[i] = wire.MustRoom(fmt.Sprintf("pool:acct%d", i))
		members[i] = f.liveMember(t, rooms[i])
	}
	// More events than a tail keeps, so tails trim as well as grow.
	for n := range 20 {
		for i, r := range rooms {
			seq := f.publish(t, r, n)
			if got := members[i].next(t); got != seq {
				t.Fatalf("%s: seq %d, want %d", r, got, seq)
			}
		}
	}
	sum := func() (bytes, frames int) {
		for _, r := range rooms {
			rm := f.room(r)
			rm.mu.Lock()
			bytes += rm.tailBytes
			frames += len(rm.tail)
			rm.mu.Unlock()
		}
		return bytes, frames
	}
	bytes, frames := sum()
	if frames != 8*len(rooms) {
		t.Fatalf("tails hold %d frames, want %d", frames, 8*len(rooms))
	}
	if got := testutil.ToFloat64(f.m.TailBytes); got != float64(bytes) || bytes == 0 {
		t.Fatalf("roomcast_tail_bytes %v, the tails hold %d", got, bytes)
	}
	// A resync after a stream reset empties a tail (forgetTail).
	rm := f.room(rooms[0])
	rm.mu.Lock()
	rm.forgetTail(f.hub.tail)
	rm.mu.Unlock()
	bytes, _ = sum()
	if got := testutil.ToFloat64(f.m.TailBytes); got != float64(bytes) {
		t.Fatalf("after a reset: roomcast_tail_bytes %v, the tails hold %d", got, bytes)
	}
	for i, r := range rooms {
		if !f.hub.Leave(r, members[i]) {
			t.Fatalf("%s: not a member", r)
		}
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		if got := testutil.ToFloat64(f.m.TailBytes); got != 0 {
			return fmt.Errorf("roomcast_tail_bytes %v with no room left", got)
		}
		return nil
	})
}
