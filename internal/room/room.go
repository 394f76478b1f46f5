package room

import (
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomcast/roomcast/internal/latch"
	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/wire"
)

// room is one room on this node.
type room struct {
	// Set at construction.
	name      wire.Room
	broadcast prometheus.Observer // websocket_broadcast_duration_seconds{channel=kind}
	ready     latch.Latch         // fired when setUp finished

	// Written by setUp before ready is closed; read-only after.
	setUpErr    error
	unsubscribe func() error

	// Guarded by the shard's mu.
	refs int32 // members plus joins under way

	// Guarded by mu: resumes under way; the tail may grow to the catch-up
	// bounds.
	catchingUp int32

	// syncAttempts, guarded by feedMu, counts failed syncs in a row, for
	// the backoff of the next (it stops counting at the most a backoff
	// needs).
	syncAttempts int16

	// The flags, each guarded by the lock its group below names; they sit
	// together to keep a room, of which a node may hold tens of thousands
	// with one member each, within a smaller size class.
	feeding    bool // inMu: a feed goroutine runs
	overflowed bool // inMu: events were dropped since the feed last emptied the inbox
	stale      bool // feedMu: the room is behind the stream; a sync is due
	holding    bool // feedMu: members' writers are held over a burst (see feedBurst)
	tornDown   bool // mu: set when the room is torn down

	// inMu guards the inbox: live events from the bus's dispatcher waiting
	// for the room's feed goroutine (see enqueueLive).
	inMu       sync.Mutex
	inbox      []*wire.Event
	inboxBytes int

	// feedMu serialises the feed: live events, backfills and resyncs. It is
	// held across stream reads, so mu, which joins and leaves take, is not.
	feedMu sync.Mutex
	// staleSeen, guarded by feedMu, is the newest live event dropped while
	// stale: the sync brings the room at least up to it.
	staleSeen uint64

	// Guarded by mu.
	mu      sync.Mutex
	members []Member       // dense, for fast fan-out
	index   map[Member]int // position in members; nil while the room is small
	lastSeq uint64         // the last sequence delivered (or skipped) in order
	epoch   uint64         // counts stream resets; a resume spanning one fails
	stream  string         // the epoch (wire.StreamID.Epoch) of the stream lastSeq is in
	events  uint64         // events delivered to members since the room was set up (stats.go)

	// Also guarded by mu: the tail, the frames of the room's latest events
	// (those after tailFrom), kept so a resume from within it needs nothing
	// from the stream, and a resume from further back can be handed over
	// to the live feed without missing what arrived while it replayed.
	tail       []*wire.Frame
	tailBytes  int
	tailFrom   uint64
	tailResets uint64 // counts forgetTail: a seed read before one must not extend the tail
	seeding    *seed  // a resume's stream read that will extend the tail back, or nil
}

func newRoom(r wire.Room, m *metrics.Metrics) *room {
	return &room{
		name:      r,
		broadcast: m.Broadcast.WithLabelValues(r.Kind()),
	}
}

// indexFrom is the room size from which members are indexed by a map: a
// map costs hundreds of bytes, more than a scan of a few members takes,
// and most rooms have one or a few members on a node.
const indexFrom = 16

// add and remove keep members dense: remove moves the last member into the
// hole. Both need mu.
func (rm *room) add(m Member) {
	if rm.find(m) >= 0 {
		return
	}
	rm.members = append(rm.members, m)
	switch {
	case rm.index != nil:
		rm.index[m] = len(rm.members) - 1
	case len(rm.members) >= indexFrom:
		rm.index = make(map[Member]int, len(rm.members))
		for i, mm := range rm.members {
			rm.index[mm] = i
		}
	}
}

// find is m's position in members, -1 if it is not a member. Needs mu.
func (rm *room) find(m Member) int {
	if rm.index != nil {
		if i, ok := rm.index[m]; ok {
			return i
		}
		return -1
	}
	for i, mm := range rm.members {
		if mm == m {
			return i
		}
	}
	return -1
}

func (rm *room) remove(m Member) bool {
	i := rm.find(m)
	if i < 0 {
		return false
	}
	last := len(rm.members) - 1
	rm.members[i] = rm.members[last]
	rm.members[last] = nil
	rm.members = rm.members[:last]
	if rm.index != nil {
		if i < last {
			rm.index[rm.members[i]] = i
		}
		delete(rm.index, m)
		if len(rm.members) < indexFrom/2 {
			rm.index = nil // small again: scanning is cheaper than the map
		}
	}
	if len(rm.members) == 0 {
		rm.members = nil // give back a large backing array
	}
	return true
}

// isTornDown reports whether the room was torn down.
func (rm *room) isTornDown() bool {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.tornDown
}

func (rm *room) last() uint64 {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.lastSeq
}

// setPosition places the room at seq of the stream whose epoch is stream,
// with an empty tail: at set-up, and after a stream reset. Needs mu.
func (rm *room) setPosition(seq uint64, stream string, b tailBounds) {
	rm.lastSeq, rm.stream = seq, stream
	rm.forgetTail(b)
}

// skipHole records that the room's events up to seq were removed before
// this node could deliver them: they count as passed (lastSeq) and the tail
// starts after them, empty, so a resume from before the hole reads the
// stream and learns it is not recovered. Needs mu.
func (rm *room) skipHole(seq uint64, b tailBounds) {
	rm.lastSeq = max(rm.lastSeq, seq)
	rm.forgetTail(b)
}

// forgetTail empties the tail: resumes from before the room's position read
// the stream. Needs mu.
func (rm *room) forgetTail(b tailBounds) {
	rm.tailResets++
	clear(rm.tail)
	before := rm.tailBytes
	rm.tail, rm.tailBytes, rm.tailFrom = nil, 0, rm.lastSeq
	b.account(before, 0)
}

// tailBounds are the limits of a room's tail: small in the steady state,
// larger while a resume is catching up, so a room of large or frequent
// events still gives the resume a window to hand over in.
type tailBounds struct {
	frames, bytes           int // steady state
	catchUpFrames, catchUpB int // while resumes are under way
	mem                     *catchUpMemory
}

// catchUpLimits are the bounds while resumes are under way.
func (b tailBounds) catchUpLimits() (frames, bytes int) {
	return max(b.frames, b.catchUpFrames), max(b.bytes, b.catchUpB)
}

// seedLimits are the bounds of what a stream read may add to a tail at
// once (a seed's window): the catch-up bounds while the node's memory for
// catch-ups allows, the steady ones past it.
func (b tailBounds) seedLimits() (frames, bytes int) {
	if b.mem.full() {
		return b.frames, b.bytes
	}
	return b.catchUpLimits()
}

// account counts, against the node's memory for catch-ups, the change of
// a tail from before to after bytes: only what lies past the steady bound
// counts, since every room may hold that much.
func (b tailBounds) account(before, after int) {
	b.mem.add(max(after-b.bytes, 0) - max(before-b.bytes, 0))
}

// remember appends a delivered frame to the tail, dropping the oldest past
// the bounds. Needs mu.
func (rm *room) remember(f *wire.Frame, b tailBounds) {
	if b.frames <= 0 && rm.catchingUp == 0 || rm.tornDown {
		rm.tailFrom = f.Seq
		return
	}
	before := rm.tailBytes
	rm.tail = append(rm.tail, f)
	rm.tailBytes += f.Len()
	b.account(before, rm.tailBytes)
	rm.trimTail(b)
}

// trimTail drops the tail's oldest frames past the bounds in force, but
// never the newest. Needs mu.
func (rm *room) trimTail(b tailBounds) {
	maxFrames, maxBytes := rm.tailLimits(b)
	drop := 0
	before := rm.tailBytes
	for len(rm.tail)-drop > maxFrames || rm.tailBytes > maxBytes && len(rm.tail)-drop > 1 {
		old := rm.tail[drop]
		rm.tailFrom = old.Seq
		rm.tailBytes -= old.Len()
		rm.tail[drop] = nil
		drop++
	}
	b.account(before, rm.tailBytes)
	if drop > 0 {
		rm.tail = rm.tail[drop:]
	}
	if len(rm.tail) == 0 {
		rm.tail = nil // give back the backing array
	}
}

// tailLimits are the bounds of the tail in force: the catch-up bounds
// while resumes are under way. Needs mu.
func (rm *room) tailLimits(b tailBounds) (frames, bytes int) {
	if rm.catchingUp > 0 {
		return b.catchUpLimits()
	}
	return b.frames, b.bytes
}

// tearDown ends the live subscription of a room that has no members left
// and gives back its tail.
func (rm *room) tearDown(log *slog.Logger, b tailBounds) {
	rm.mu.Lock()
	rm.tornDown = true
	rm.forgetTail(b)
	rm.mu.Unlock()
	<-rm.ready.Done()
	if rm.unsubscribe == nil {
		return
	}
	if err := rm.unsubscribe(); err != nil {
		log.Debug("unsubscribe live feed", "room", rm.name.String(), "err", err)
	}
}
