package room

import (
	"context"
	"sync/atomic"

	"github.com/roomcast/roomcast/internal/wire"
)

// When a node takes over the clients of one that died, many clients of
// the same room resume at once from about the same position, in a room
// this node had no tail for. Each reading the same events from the stream
// costs a request per client and decodes every event once per client. So
// the first resume to read a stretch (its "seed") keeps the frames it
// sends, within the tail's catch-up bounds, and prepends them to the
// room's tail when its read proves complete; resumes from within that
// stretch wait for it and then take the events from the tail, encoded
// once, like a warm room's.

// seed is a resume's stream read of (from, to] under way, to is where the
// room's tail began when it started.
type seed struct {
	from, to   uint64
	tailResets uint64        // the room's tailResets when the read began
	done       chan struct{} // closed when the read ended, extended or not
	// overflow is set once the read outgrew the bounds: it will not
	// reach back to from, so later resumes do not wait for it.
	overflow atomic.Bool
}

// wait waits for the seed's read to end; the caller's next round looks at
// the tail again.
func (s *seed) wait(ctx context.Context) error {
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startSeed returns the read a resume at cursor should wait for (mine
// false), or a new one it is to do and keep (mine true), or nil when it
// reads alone: another read is under way that does not cover the cursor
// or will not fit the tail.
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

// endSeed ends the read: its frames become the front of the tail if the
// read was complete (nothing removed: intact) and the tail still begins
// where the read ended, so the tail still holds every event after its
// start. Then the waiting resumes go on.
func (rm *room) endSeed(s *seed, w *window) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.seeding = nil
	close(s.done)
	if !w.complete || rm.tailFrom != s.to || rm.tailResets != s.tailResets || w.from >= s.to {
		return
	}
	rm.tail = append(w.frames, rm.tail...)
	rm.tailBytes += w.bytes
	rm.tailFrom = w.from
	rm.trimTail(w.bounds)
}

// window keeps the newest frames of a seed's read within the catch-up
// bounds of the tail: from is the position before its oldest frame.
type window struct {
	seed     *seed
	frames   []*wire.Frame
	bytes    int
	from     uint64
	bounds   tailBounds
	complete bool // the read reached its end and nothing in it was removed
}

// add keeps f, dropping the oldest frames past the bounds.
func (w *window) add(f *wire.Frame) {
	w.frames = append(w.frames, f)
	w.bytes += f.Len()
	for len(w.frames) > w.bounds.catchUpFrames || w.bytes > w.bounds.catchUpB && len(w.frames) > 1 {
		w.seed.overflow.Store(true)
		w.from = w.frames[0].Seq
		w.bytes -= w.frames[0].Len()
		w.frames[0] = nil
		w.frames = w.frames[1:]
	}
}
