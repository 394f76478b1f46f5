package room

import (
	"sync"

	"github.com/roomcast/roomcast/internal/wire"
)

// A room's inbox bounds: small, so that a room whose feed is held up (a
// backfill in progress) drops early and resyncs from the stream rather than
// buffering without end.
const (
	maxInboxEvents = 4096
	maxInboxBytes  = 8 << 20
)

// enqueueLive is a room's live handler, called by the bus's dispatcher,
// which serves every room and so must not wait: it puts ev in the room's
// inbox and makes sure a feed goroutine runs to deliver it. A room costs no
// goroutine while no event is on its way. An event that does not fit is
// dropped, and the room resyncs from the stream once its feed has caught
// up with the inbox.
func (h *Hub) enqueueLive(rm *room, ev *wire.Event) {
	rm.inMu.Lock()
	size := len(ev.Data)
	if len(rm.inbox) >= maxInboxEvents || rm.inboxBytes+size > maxInboxBytes && len(rm.inbox) > 0 {
		first := !rm.overflowed
		rm.overflowed = true
		rm.inMu.Unlock()
		if first {
			h.m.LiveDrops.Inc()
		}
		return
	}
	rm.inbox = append(rm.inbox, ev)
	rm.inboxBytes += size
	start := !rm.feeding
	rm.feeding = true
	rm.inMu.Unlock()
	if start && !h.feeders.Go(func() { h.feed(rm) }) {
		rm.inMu.Lock()
		rm.feeding = false
		rm.inMu.Unlock()
	}
}

// maxBurst bounds the events a burst holds the writers for: the latency a
// held frame may pay, and the frames it adds to a member's queue.
const maxBurst = 64

// feedBurst delivers several events that waited in the inbox together,
// holding the members' writers until the last is queued: each member then
// writes them all with one system call, not one per event. A room falls
// behind like this only under load, when those system calls are what the
// node spends its time on.
func (h *Hub) feedBurst(rm *room, batch []*wire.Event) {
	rm.feedMu.Lock()
	rm.holding = true
	rm.feedMu.Unlock()
	for _, ev := range batch {
		h.onLive(rm, ev)
	}
	rm.feedMu.Lock()
	rm.holding = false
	rm.feedMu.Unlock()
	rm.mu.Lock()
	for _, m := range rm.members {
		if hm, ok := m.(heldMember); ok {
			hm.Flush()
		}
	}
	rm.mu.Unlock()
}

// heldMember is a member whose writer can be held over a burst of frames
// (conn.Conn is one): EnqueueHeld queues without writing, Flush writes.
type heldMember interface {
	EnqueueHeld(f *wire.Frame) bool
	Flush()
}

// group runs goroutines that its owner waits for when it closes, and
// refuses new ones after that.
type group struct {
	mu     sync.Mutex
	closed bool // guarded by mu
	wg     sync.WaitGroup
}

// Go runs f on a new goroutine unless the group is closed; it reports
// whether it did.
func (g *group) Go(f func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Go(f)
	return true
}

// Close refuses new goroutines and waits for those running.
func (g *group) Close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}

// feed is a room's feed goroutine: it delivers the inbox's events in order
// and ends when the inbox is empty. It may wait for the stream (a
// backfill), holding up only its own room.
func (h *Hub) feed(rm *room) {
	var batch []*wire.Event
	for {
		rm.inMu.Lock()
		if len(rm.inbox) == 0 {
			rm.feeding = false
			resync := rm.overflowed
			rm.overflowed = false
			rm.inbox = nil // give back the backing array
			rm.inMu.Unlock()
			if resync {
				// Everything dropped came before what the inbox held, so
				// a sync from now on finds it all.
				h.schedule(rm, 0)
			}
			return
		}
		batch, rm.inbox = rm.inbox, batch[:0]
		rm.inboxBytes = 0
		rm.inMu.Unlock()
		if len(batch) == 1 {
			h.onLive(rm, batch[0])
		}
		for rest := batch; len(rest) > 1; {
			n := min(len(rest), maxBurst)
			h.feedBurst(rm, rest[:n])
			rest = rest[n:]
			if len(rest) == 1 {
				h.onLive(rm, rest[0])
			}
		}
		clear(batch)
	}
}
