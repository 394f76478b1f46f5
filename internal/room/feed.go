package room

import (
	"context"
	"fmt"
	"time"

	"github.com/roomcast/roomcast/internal/wire"
)

// setUp subscribes a new room's live feed, then reads where the stream is, so
// no event after the room's starting point is missed: an event that arrives
// in between is either at or before the starting point (a duplicate, dropped)
// or after it (delivered).
func (h *Hub) setUp(rm *room) {
	defer close(rm.ready)
	unsub, err := h.src.SubscribeLive(rm.name, func(ev *wire.Event) { h.onLive(rm, ev) })
	if err != nil {
		rm.setUpErr = fmt.Errorf("live feed of %s: %w", rm.name, err)
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.opts.StreamTimeout)
	defer cancel()
	last, err := h.src.LastSeq(ctx, rm.name)
	if err != nil {
		_ = unsub()
		rm.setUpErr = fmt.Errorf("position of %s: %w", rm.name, err)
		return
	}
	rm.unsubscribe = unsub
	rm.lastSeq = last // nobody else sees rm before ready is closed
}

// onLive is the live subscription's handler; calls for one room come one at
// a time, in arrival order.
func (h *Hub) onLive(rm *room, ev *wire.Event) {
	<-rm.ready
	if rm.setUpErr != nil {
		return
	}
	rm.feedMu.Lock()
	defer rm.feedMu.Unlock()
	last := rm.last()
	switch {
	case ev.Seq <= last:
		h.m.Duplicates.Inc()
		return
	case rm.stale || ev.Prev > last:
		// Events between last and this one never reached us: fetch them
		// before this one. If that fails, this one waits for the retry too.
		h.m.Gaps.Inc()
		h.backfill(rm, last, ev.Seq-1)
		if rm.stale || ev.Seq <= rm.last() {
			return
		}
	}
	h.deliver(rm, ev)
}

// backfill delivers the stored events in (after, until] and needs feedMu.
// When the stream cannot be read the room is marked stale and a retry is
// scheduled; nothing after the missing events is delivered meanwhile, so
// order holds and nothing is lost.
func (h *Hub) backfill(rm *room, after, until uint64) {
	ctx, cancel := context.WithTimeout(h.ctx, h.opts.StreamTimeout)
	defer cancel()
	err := h.src.Replay(ctx, rm.name, after, until, func(ev *wire.Event) error {
		if ev.Seq > rm.last() {
			h.deliver(rm, ev)
			h.m.Backfilled.Inc()
		}
		return nil
	})
	if err != nil {
		if !rm.stale && h.ctx.Err() == nil {
			h.log.Warn("backfill failed; will retry", "room", rm.name.String(), "after", after, "until", until, "err", err)
			time.AfterFunc(h.opts.RetryDelay, func() { h.retry(rm) })
		}
		rm.stale = true
		return
	}
	rm.stale = false
}

// retry brings a stale room up to the stream's latest event.
func (h *Hub) retry(rm *room) {
	if h.ctx.Err() != nil {
		return
	}
	rm.feedMu.Lock()
	defer rm.feedMu.Unlock()
	if !rm.stale {
		return
	}
	rm.stale = false // backfill sets it again, and reschedules, on failure
	h.syncLocked(rm)
}

// syncLocked backfills whatever the stream holds past the last delivered
// event; it needs feedMu.
func (h *Hub) syncLocked(rm *room) {
	ctx, cancel := context.WithTimeout(h.ctx, h.opts.StreamTimeout)
	latest, err := h.src.LastSeq(ctx, rm.name)
	cancel()
	if err != nil {
		if !rm.stale && h.ctx.Err() == nil {
			time.AfterFunc(h.opts.RetryDelay, func() { h.retry(rm) })
		}
		rm.stale = true
		return
	}
	if last := rm.last(); latest > last {
		h.m.Gaps.Inc()
		h.backfill(rm, last, latest)
	}
}

// Resync backfills every room from its last delivered event, for when the
// live feed may have missed events (after a NATS reconnection).
func (h *Hub) Resync() {
	for _, rm := range h.snapshot() {
		select {
		case <-rm.ready:
		default:
			continue // still setting up: it reads its position itself
		}
		if rm.setUpErr != nil {
			continue
		}
		rm.feedMu.Lock()
		h.syncLocked(rm)
		rm.feedMu.Unlock()
	}
}

func (h *Hub) snapshot() []*room {
	var out []*room
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		for _, rm := range sh.rooms {
			out = append(out, rm)
		}
		sh.mu.Unlock()
	}
	return out
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
	rm.remember(f)
	n := fanOut(rm.members, f)
	rm.mu.Unlock()
	rm.broadcast.Observe(time.Since(start).Seconds())
	h.events.Add(float64(n))
}

// fanOut queues the same frame to each member; it is the per-delivery hot path.
func fanOut(members []Member, f *wire.Frame) int {
	for _, m := range members {
		m.Enqueue(f)
	}
	return len(members)
}
