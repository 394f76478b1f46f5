package room

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/roomcast/roomcast/internal/wire"
)

// When a node takes over the clients of one that died, many clients of
// the same room resume at once from about the same position, in a room
// this node has no tail for. Each reading the same events from the stream
// would cost a request per client and decode every event once per client.
// So the first resume to read a stretch (its seed) reads it into a window
// without sending anything, and prepends the window to the room's tail
// when the read proves complete; resumes from within the stretch wait for
// that, and every one of them, the reader too, takes the events from the
// tail in its next round, encoded once, each paced by its own client.
// The read itself is paced by no client: a slow one cannot hold the others
// up. A stretch longer than the tail's catch-up bounds does not fit: its
// oldest frames are sent by the reader as they leave the window, and the
// waiting resumes are let go at once to read for themselves.

// seed is a resume's stream read of (from, to] under way; to is where the
// room's tail began when it started.
type seed struct {
	from, to   uint64
	tailResets uint64        // the room's tailResets when the read began
	done       chan struct{} // closed when waiting for the read is over
	once       sync.Once
	// overflow is set once the read outgrew the bounds: it will not
	// reach back to from, so no resume waits for it.
	overflow atomic.Bool
}

// release lets the waiting resumes go.
func (s *seed) release() { s.once.Do(func() { close(s.done) }) }

// wait waits for the seed's read to end or overflow; the caller's next
// round looks at the tail again.
func (s *seed) wait(ctx context.Context) error {
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startSeed returns the read a resume at cursor should wait for (mine
// false), or a new one it is to do (mine true), or nil when it reads
// alone: another read is under way that does not cover the cursor or will
// not fit the tail.
func (rm *room) startSeed(cursor, epoch uint64) (s *seed, mine bool) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.epoch != epoch {
		return nil, false // the hand-over reports the reset
	}
	if s := rm.seeding; s != nil {
		if s.from <= cursor && s.to == rm.tailFrom && s.tailResets == rm.tailResets && !s.overflow.Load() {
			return s, false
		}
		return nil, false
	}
	rm.seeding = &seed{from: cursor, to: rm.tailFrom, tailResets: rm.tailResets, done: make(chan struct{})}
	return rm.seeding, true
}

// seed does the read of s and sends what did not fit the window; the
// events in the window reach the member from the tail in the next round,
// or, when the tail could not take them, are sent here.
func (rs *resume) seed(ctx context.Context, s *seed) error {
	w := &window{seed: s, from: s.from, bounds: rs.h.tail}
	defer w.handedOver() // what was not sent or given to the tail
	rs.fromStore = true
	intact, err := rs.h.src.Replay(ctx, rs.rm.name, rs.cursor, s.to, func(ev *wire.Event) error {
		if ev.Err == nil {
			w.add(wire.EventFrame(ev))
		}
		for w.over() {
			if err := rs.sendOne(ctx, w.pop()); err != nil {
				return err
			}
		}
		return nil
	})
	w.complete = err == nil && intact
	extended := rs.rm.endSeed(s, w)
	if err != nil {
		return err
	}
	rs.recovered = rs.recovered && intact
	if extended {
		rs.cursor = w.from // the rest is in the tail now
		return nil
	}
	for _, f := range w.frames {
		if err := rs.sendOne(ctx, f); err != nil {
			return err
		}
	}
	rs.cursor = max(rs.cursor, s.to) // bad events and removed ones count as seen
	return nil
}

// sendOne sends one replayed frame to the member.
func (rs *resume) sendOne(ctx context.Context, f *wire.Frame) error {
	if err := rs.m.Send(ctx, f); err != nil {
		return err
	}
	rs.cursor = f.Seq
	rs.replayed++
	return nil
}

// endSeed ends the read and lets the waiting resumes go. The window
// becomes the front of the tail if the read was complete (nothing removed)
// and the tail still begins where the read ended, so the tail still holds
// every event after its start; extended reports that it did.
func (rm *room) endSeed(s *seed, w *window) (extended bool) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.seeding = nil
	s.release()
	if !w.complete || rm.tailFrom != s.to || rm.tailResets != s.tailResets || rm.tornDown {
		return false
	}
	// The tail must take the whole window: trimmed, it would no longer
	// reach back to where the window begins.
	maxFrames, maxBytes := w.bounds.seedLimits()
	if len(rm.tail)+len(w.frames) > maxFrames || rm.tailBytes+w.bytes > maxBytes {
		return false
	}
	before := rm.tailBytes
	rm.tail = append(w.frames, rm.tail...)
	rm.tailBytes += w.bytes
	rm.tailFrom = w.from
	w.bounds.account(before, rm.tailBytes)
	w.handedOver()
	return true
}

// window holds the newest frames of a seed's read within the catch-up
// bounds of the tail: from is the position before its oldest frame.
type window struct {
	seed     *seed
	frames   []*wire.Frame
	bytes    int
	from     uint64
	bounds   tailBounds
	complete bool // the read reached its end and nothing in it was removed
}

// A window's frames count against the node's memory for catch-ups while
// it holds them: thousands of rooms seeding at once after a node's death
// are what that memory bounds.
func (w *window) add(f *wire.Frame) {
	w.frames = append(w.frames, f)
	w.bytes += f.Len()
	w.bounds.mem.add(f.Len())
}

// handedOver gives the window's frames up: to the tail, which counts them
// from now on, or sent to the member.
func (w *window) handedOver() {
	w.bounds.mem.add(-w.bytes)
	w.frames, w.bytes = nil, 0
}

// over reports that the window holds more than the bounds allow.
func (w *window) over() bool {
	maxFrames, maxBytes := w.bounds.seedLimits()
	return len(w.frames) > maxFrames || w.bytes > maxBytes && len(w.frames) > 1
}

// pop takes the oldest frame out of the window; the read no longer fits,
// so the resumes waiting for it go.
func (w *window) pop() *wire.Frame {
	f := w.frames[0]
	w.frames[0] = nil
	w.frames = w.frames[1:]
	w.bytes -= f.Len()
	w.bounds.mem.add(-f.Len())
	w.from = f.Seq
	if !w.seed.overflow.Swap(true) {
		w.seed.release()
	}
	return f
}
