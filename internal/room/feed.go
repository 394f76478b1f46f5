package room

import (
	"context"
	"errors"
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
	if rm.stale {
		return // the retry brings the room up to the stream, this event included
	}
	last := rm.last()
	switch {
	case ev.Seq <= last:
		h.m.Duplicates.Inc()
		return
	case ev.Prev > last:
		// Events between last and this one never reached us: fetch them
		// before this one. If that fails, this one waits for the retry too.
		h.m.Gaps.Inc()
		if h.backfill(rm, last, ev.Seq-1) != nil || ev.Seq <= rm.last() {
			return
		}
	}
	h.deliver(rm, ev)
}

// backfill delivers the stored events in (after, until] and needs feedMu.
// When the stream cannot be read the room goes stale: nothing after the
// missing events is delivered until the retry has fetched them, so order
// holds and nothing is lost.
func (h *Hub) backfill(rm *room, after, until uint64) error {
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
		h.markStale(rm, fmt.Errorf("backfill (%d, %d]: %w", after, until, err))
	}
	return err
}

// markStale records that rm is behind the stream and schedules a retry;
// needs feedMu.
func (h *Hub) markStale(rm *room, err error) {
	if rm.stale || h.ctx.Err() != nil {
		return
	}
	rm.stale = true
	h.log.Warn("room behind the stream; will retry", "room", rm.name.String(), "err", err, "retry_in", h.opts.RetryDelay)
	time.AfterFunc(h.opts.RetryDelay, func() { h.retry(rm) })
}

// retry brings a stale room up to the stream's latest event, unless the
// room has been torn down meanwhile.
func (h *Hub) retry(rm *room) {
	if h.ctx.Err() != nil || rm.isTornDown() {
		return
	}
	rm.feedMu.Lock()
	defer rm.feedMu.Unlock()
	if !rm.stale {
		return
	}
	rm.stale = false // syncLocked marks it again, and reschedules, on failure
	_ = h.syncLocked(rm)
}

// syncLocked backfills whatever the stream holds past the last delivered
// event; it needs feedMu. It fails when the stream cannot be read, and then
// the room is stale.
func (h *Hub) syncLocked(rm *room) error {
	if rm.stale {
		return errStale
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.opts.StreamTimeout)
	latest, err := h.src.LastSeq(ctx, rm.name)
	cancel()
	if err != nil {
		h.markStale(rm, err)
		return err
	}
	if last := rm.last(); latest > last {
		h.m.Gaps.Inc()
		return h.backfill(rm, last, latest)
	}
	return nil
}

// errStale is what a room behind the stream answers until its retry.
var errStale = errors.New("room is behind the stream; retrying")

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
		_ = h.syncLocked(rm) // a failure schedules its own retry
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
