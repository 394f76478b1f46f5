package room

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// A room costs no goroutine while no event is on its way: a node can follow
// thousands of rooms with one member each. Subscribing a goroutine per
// room (nats.go's async subscriptions) would add one per room here.
func TestIdleRoomsCostNoGoroutine(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	const rooms = 500
	before := runtime.NumGoroutine()
	members := make([]*recorder, rooms)
	for i := range rooms {
		members[i] = f.liveMember(t, wire.MustRoom(fmt.Sprintf("pool:idle%d", i)))
	}
	// Every room works: an event of the last reaches its member.
	last := wire.MustRoom(fmt.Sprintf("pool:idle%d", rooms-1))
	seq := f.publish(t, last, 1)
	if got := members[rooms-1].next(t); got != seq {
		t.Fatalf("got seq %d, want %d", got, seq)
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		if grown := runtime.NumGoroutine() - before; grown > 20 {
			return fmt.Errorf("%d rooms left %d more goroutines", rooms, grown)
		}
		return nil
	})
}

// A room whose feed is held up (a long backfill) does not hold up the
// others: the dispatcher hands events on without waiting for any room.
func TestAHeldRoomDoesNotHoldUpOthers(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	held, free := wire.MustRoom("pool:held"), wire.MustRoom("pool:free")
	heldM, freeM := f.liveMember(t, held), f.liveMember(t, free)
	rm := f.room(held)
	rm.feedMu.Lock()
	var release sync.Once
	unhold := func() { release.Do(rm.feedMu.Unlock) }
	defer unhold() // a failing test must not leave the hub's Close waiting
	first := f.publish(t, held, 1)
	for i := range 3 {
		seq := f.publish(t, free, i)
		if got := freeM.next(t); got != seq {
			t.Fatalf("free room: got seq %d, want %d", got, seq)
		}
	}
	unhold()
	if got := heldM.next(t); got != first {
		t.Fatalf("held room: got seq %d, want %d", got, first)
	}
}

// heldRecorder is a member whose writer can be held: it records frames
// queued held and how many were queued when each Flush came.
type heldRecorder struct {
	seqMember
	mu      sync.Mutex
	held    int
	flushes []int // held frames at each Flush
}

func (h *heldRecorder) EnqueueHeld(f *wire.Frame) bool {
	h.mu.Lock()
	h.held++
	h.mu.Unlock()
	return h.add(f)
}

func (h *heldRecorder) Flush() {
	h.mu.Lock()
	h.flushes = append(h.flushes, h.held)
	h.mu.Unlock()
}

// Events that waited in a room's inbox together are queued to members with
// their writers held, then flushed once: each member writes the burst at
// once. Every event still arrives, in order.
func TestABurstIsQueuedHeldThenFlushed(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	r := wire.MustRoom("pool:burst")
	m := &heldRecorder{}
	f.join(t, r, m)
	rm := f.room(r)
	rm.feedMu.Lock()
	var release sync.Once
	unhold := func() { release.Do(rm.feedMu.Unlock) }
	defer unhold()
	// The first event takes the feed goroutine, which then waits for
	// feedMu; only after it has taken the event do the others come, so
	// they wait in the inbox together however the goroutines are run.
	const n = 5
	want := []uint64{f.publish(t, r, 0)}
	natstest.WaitFor(t, 10*time.Second, func() error {
		rm.inMu.Lock()
		defer rm.inMu.Unlock()
		if !rm.feeding || len(rm.inbox) != 0 {
			return fmt.Errorf("feeding %v, %d events in the inbox", rm.feeding, len(rm.inbox))
		}
		return nil
	})
	for i := 1; i < n; i++ {
		want = append(want, f.publish(t, r, i))
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		rm.inMu.Lock()
		defer rm.inMu.Unlock()
		if len(rm.inbox) != n-1 {
			return fmt.Errorf("%d events in the inbox, want %d", len(rm.inbox), n-1)
		}
		return nil
	})
	unhold()
	m.waitFor(t, want)
	natstest.WaitFor(t, 10*time.Second, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.held < n-1 || len(m.flushes) == 0 || m.flushes[len(m.flushes)-1] != m.held {
			return fmt.Errorf("%d held, flushes at %v", m.held, m.flushes)
		}
		return nil
	})
}
