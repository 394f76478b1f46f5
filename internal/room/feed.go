package room

import (
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/roomcast/roomcast/internal/wire"
)

// setUp subscribes a new room's live feed, then reads where the stream is, so
// no event after the room's starting point is missed: an event that arrives
// in between is either at or before the starting point (a duplicate, dropped)
// or after it (delivered).
func (h *Hub) setUp(rm *room) {
	upTo, ok := h.setUpFeed(rm)
	rm.ready.Fire()
	if ok {
		// After ready: a full check either lists the room or comes after
		// this note.
		h.sync.noteSetUp(upTo)
	}
}

// setUpFeed does setUp's work and returns the stream position its heads
// were read as of. It holds feedMu throughout: a reset of the stream (see
// reset), which restarts every room, rooms still setting up included,
// waits for it, so a position read in the old stream cannot outlive the
// reset.
func (h *Hub) setUpFeed(rm *room) (upTo uint64, ok bool) {
	rm.feedMu.Lock()
	defer rm.feedMu.Unlock()
	unsub, err := h.src.SubscribeLive(rm.name,
		func(ev *wire.Event) { h.enqueueLive(rm, ev) },
		func() { h.schedule(rm, 0) })
	if err != nil {
		rm.setUpErr = fmt.Errorf("live feed of %s: %w", rm.name, err)
		return 0, false
	}
	// Read before the position: a stream recreated in between is a new
	// identity for the sync loop, whose reset restarts this room once its
	// set-up ends (it waits for feedMu).
	id, err := h.streamID(h.ctx)
	if err != nil {
		_ = unsub()
		rm.setUpErr = fmt.Errorf("position of %s: %w", rm.name, err)
		return 0, false
	}
	heads, upTo, err := h.src.Heads(h.ctx, []wire.Room{rm.name})
	if err != nil {
		_ = unsub()
		rm.setUpErr = fmt.Errorf("position of %s: %w", rm.name, err)
		return 0, false
	}
	rm.unsubscribe = unsub
	rm.setPosition(heads[rm.name], id.Epoch(), h.tail) // nobody else sees rm before ready is closed
	return upTo, true
}

// onLive handles one live event; it runs on the room's feed goroutine, so
// calls for one room come one at a time, in arrival order.
func (h *Hub) onLive(rm *room, ev *wire.Event) {
	<-rm.ready.Done()
	if rm.setUpErr != nil {
		return
	}
	rm.feedMu.Lock()
	defer rm.feedMu.Unlock()
	if rm.stale {
		// The sync brings the room up to the stream, this event included.
		rm.staleSeen = max(rm.staleSeen, ev.Seq)
		return
	}
	last := rm.last()
	switch {
	case ev.Seq <= last:
		h.m.Duplicates.Inc()
		if ev.Prev == 0 {
			// A room's first event again: the stream may have been
			// recreated with sequences starting over.
			h.sync.checkStream()
		}
		return
	case ev.Prev < last:
		// The stream says the room's previous event is older than the
		// last one delivered: that one was deleted or expired since (the
		// room's history aged out), or this is a new stream. Nothing of
		// the room lies between, so the event is delivered; the stream's
		// identity is checked, in case.
		h.sync.checkStream()
	case ev.Prev > last:
		// Events between last and this one never reached us: fetch them
		// before this one. If that fails, this one waits for the sync too,
		// remembered like any event dropped while stale: the replica that
		// answers the sync may not have stored it yet.
		h.m.Gaps.Inc()
		if h.backfill(rm, last, ev.Prev) != nil {
			rm.staleSeen = max(rm.staleSeen, ev.Seq)
			return
		}
		if ev.Seq <= rm.last() {
			return
		}
	}
	h.deliver(rm, ev)
}

// backfill delivers the stored events in (after, until] and needs feedMu.
// When the stream cannot be read the room goes stale: nothing after the
// missing events is delivered until the sync has fetched them, so order
// holds and no stored event is skipped. When retention removed some before
// they could be read, the hole is skipped (skipHole) before the first event
// after it is delivered (the read tells by that event's Prev), or at the
// end when the hole reaches until: a resume from before the hole that
// joins afterwards, even while the backfill runs, reads the stream and
// learns it is not recovered.
func (h *Hub) backfill(rm *room, after, until uint64) error {
	intact, err := h.src.Replay(h.ctx, rm.name, after, until, func(ev *wire.Event) error {
		if last := rm.last(); ev.Seq > last {
			if ev.Prev != last && last > 0 {
				rm.mu.Lock()
				rm.skipHole(ev.Seq-1, h.tail)
				rm.mu.Unlock()
			}
			h.deliver(rm, ev)
			h.m.Backfilled.Inc()
		}
		return nil
	})
	if err != nil {
		h.markStale(rm, fmt.Errorf("backfill (%d, %d]: %w", after, until, err))
		return err
	}
	if !intact && after > 0 {
		rm.mu.Lock()
		rm.skipHole(until, h.tail)
		rm.mu.Unlock()
		h.log.Warn("events of the room were removed before this node could deliver them", "room", rm.name.String(), "after", after, "until", until)
	}
	rm.syncAttempts = 0
	return nil
}

// maxSyncAttempts is where a room's count of failed syncs stops: past it
// the backoff is at its ceiling anyway.
const maxSyncAttempts = 1000

// markStale records that rm is behind the stream and schedules a sync with
// backoff; needs feedMu.
func (h *Hub) markStale(rm *room, err error) {
	if h.ctx.Err() != nil {
		return
	}
	rm.stale = true
	if rm.syncAttempts < maxSyncAttempts {
		rm.syncAttempts++
	}
	delay := h.schedule(rm, int(rm.syncAttempts))
	if rm.syncAttempts == 1 {
		h.log.Warn("room behind the stream; will sync", "room", rm.name.String(), "err", err, "retry_in", delay)
	}
}

// deliver queues ev to every member and advances the room's position. An
// event with a bad payload only advances the position. Needs feedMu.
func (h *Hub) deliver(rm *room, ev *wire.Event) {
	if ev.Err != nil {
		rm.mu.Lock()
		rm.lastSeq = ev.Seq
		rm.mu.Unlock()
		return
	}
	f := wire.EventFrame(ev)
	start := time.Now()
	rm.mu.Lock()
	rm.lastSeq = ev.Seq
	rm.events++
	rm.remember(f, h.tail)
	n := fanOut(rm.members, f, rm.holding)
	rm.mu.Unlock()
	h.delivered.Add(1)
	rm.broadcast.Observe(time.Since(start).Seconds())
	h.events.Add(float64(n))
	h.m.Delivered.Add(float64(n * f.Len()))
}

// fanOut queues the same frame to each member and counts those that took
// it; it is the per-delivery hot path. A big room's members are walked by
// several goroutines at once, one per core, so one room's event does not
// wait for a single core to wake thousands of writers.
func fanOut(members []Member, f *wire.Frame, hold bool) int {
	parts := min(runtime.GOMAXPROCS(0), len(members)/fanOutShare)
	if parts <= 1 {
		return enqueueAll(members, f, hold)
	}
	var wg sync.WaitGroup
	counts := make([]int, parts)
	size := (len(members) + parts - 1) / parts
	for i := 1; i < parts; i++ {
		part := members[i*size : min((i+1)*size, len(members))]
		wg.Go(func() { counts[i] = enqueueAll(part, f, hold) })
	}
	counts[0] = enqueueAll(members[:size], f, hold)
	wg.Wait()
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// fanOutShare is the fewest members worth a goroutine of their own: below
// it, starting one costs more than the walk it saves.
const fanOutShare = 256

// enqueueAll queues f to members; hold leaves the writers of those that can
// be held to the end of the burst (see feedBurst).
func enqueueAll(members []Member, f *wire.Frame, hold bool) int {
	n := 0
	if !hold {
		for _, m := range members {
			if m.Enqueue(f) {
				n++
			}
		}
		return n
	}
	for _, m := range members {
		var ok bool
		if hm, can := m.(heldMember); can {
			ok = hm.EnqueueHeld(f)
		} else {
			ok = m.Enqueue(f)
		}
		if ok {
			n++
		}
	}
	return n
}
