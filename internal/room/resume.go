package room

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/wire"
)

// maxHandOver bounds the frames a hand-over forces past the member's queue
// limit; with more to send, they are sent paced by the member's writer
// first.
const maxHandOver = 64

// maxResponseLen is a bound on a subscribe response frame's length.
const maxResponseLen = 512

// maxCatchUpRounds bounds how often a catch-up goes round again because the
// live feed outran it; a member that slow is better off reconnecting.
const maxCatchUpRounds = 32

// ErrTooSlow is returned by a resume that could not catch up with the live
// feed: the member reads slower than the room is written.
var ErrTooSlow = errors.New("resume could not catch up with the live feed")

// resume is one member's catch-up from a position to the live feed.
type resume struct {
	h         *Hub
	rm        *room
	m         Member
	cursor    uint64 // the last event the member has (or need not have)
	epoch     uint64 // the room's stream epoch when the resume began
	recovered bool
	fromStore bool // some events came from the stream, not the tail
	waited    bool // it waited for another resume's read once: next time it reads alone
	replayed  int
}

// catchUp sends m room rm's events after since, then hands m over to the
// live feed, with no gap and no duplicate between the two. Events within
// the room's tail are sent from memory; older ones are read from the
// stream up to where the tail begins, so most resumes cost no request at
// all and a long one costs one request per batch. The hand-over, under the
// room's lock, queues the tail's frames the member has not had and makes
// it a member.
func (h *Hub) catchUp(ctx context.Context, rm *room, m Member, from Position, onJoined func(Joined)) error {
	rm.mu.Lock()
	epoch := rm.epoch
	rm.mu.Unlock()
	return h.catchUpIn(ctx, rm, m, from, epoch, onJoined)
}

// catchUpIn is catchUp for a member whose position was taken while the
// room was in its stream epoch (rm.epoch): a reset since then fails it
// with ErrStreamReset, as one during the catch-up does. A nil onJoined is
// a join after its state (JoinState): nothing to answer, and not counted
// as a resume.
func (h *Hub) catchUpIn(ctx context.Context, rm *room, m Member, from Position, epoch uint64, onJoined func(Joined)) error {
	since := from.Since
	rs := &resume{h: h, rm: rm, m: m, cursor: since, recovered: true, epoch: epoch}
	rm.mu.Lock()
	stream := rm.stream
	rm.catchingUp++
	rm.mu.Unlock()
	defer func() {
		rm.mu.Lock()
		rm.catchingUp--
		rm.trimTail(h.tail)
		rm.mu.Unlock()
	}()
	if from.Epoch != "" && from.Epoch != stream {
		// A position in another stream, whoever recreated it: what
		// followed it there is gone, and everything this one holds
		// follows. (Or this node has not noticed a recreation the
		// client saw elsewhere yet: it is told to look, and the client
		// replays more than it needed, never less.)
		h.sync.checkStream()
		rs.cursor, rs.recovered = 0, false
	}
	if since == 0 && rs.recovered {
		// From the very start: whatever was removed, purged or lost with
		// an earlier incarnation of the stream is missed, even when the
		// room holds nothing now and no read would notice.
		all, err := h.src.HoldsAll(ctx)
		if err != nil {
			return fmt.Errorf("resume %s: %w", rm.name, err)
		}
		rs.recovered = all
	}
	if rs.cursor > 0 && since < h.baseSeq() {
		// A position in an older incarnation of the stream: what followed
		// it there is gone. Everything the new one holds follows.
		rs.cursor, rs.recovered = 0, false
	}
	if rs.cursor > rm.last() {
		if err := rs.catchUpNode(ctx); err != nil {
			return fmt.Errorf("resume %s: %w", rm.name, err)
		}
	}
	for range maxCatchUpRounds {
		joined, err := rs.round(ctx, onJoined)
		if joined || err != nil {
			return err
		}
	}
	return ErrTooSlow
}

// catchUpNode handles a member that has seen events this node has not
// delivered yet: it brings the room up to the stream first, so none of
// them can reach the member again. What a replica says is checked with the
// leader before the member's position is judged: a position past the end
// of the whole stream is from an older incarnation of it.
func (rs *resume) catchUpNode(ctx context.Context) error {
	heads, _, err := rs.h.src.Heads(ctx, []wire.Room{rs.rm.name})
	if err != nil {
		return err
	}
	head := heads[rs.rm.name]
	if head < rs.cursor {
		// The replica that answered may lag: the leader decides.
		if head, err = rs.h.src.LeaderHead(ctx, rs.rm.name); err != nil {
			return err
		}
		if head < rs.cursor {
			st, err := rs.h.src.StreamState(ctx)
			if err != nil {
				return err
			}
			if rs.cursor > st.LastSeq {
				rs.cursor, rs.recovered = 0, false
			}
			// Otherwise no event of the room lies between its head and
			// the position: the member joins at the head.
		}
	}
	rs.h.syncRoom(rs.rm, head)
	if last := rs.rm.last(); last < head {
		return fmt.Errorf("the room is behind the stream (%d of %d); retrying", last, head)
	}
	return nil
}

// round hands the member over if the tail reaches back to the cursor, and
// otherwise moves the cursor closer: through the tail, paced by the
// member's writer, or through the stream up to where the tail begins.
func (rs *resume) round(ctx context.Context, onJoined func(Joined)) (joined bool, err error) {
	joined, pending, covered, err := rs.rm.handOver(rs.m, rs.cursor, rs.epoch, func(seq uint64, fromTail int) {
		rs.replayed += fromTail
		rs.h.m.Replayed.Add(float64(rs.replayed))
		if onJoined == nil {
			return // a join after its state: answered already, and no resume
		}
		source := metrics.ResumeTail
		if rs.fromStore {
			source = metrics.ResumeStream
		}
		rs.h.m.Resumes.WithLabelValues(source, strconv.FormatBool(rs.recovered)).Inc()
		onJoined(Joined{Seq: seq, Replayed: rs.replayed, Recovered: rs.recovered, Epoch: rs.rm.stream}) // under mu
	})
	switch {
	case joined || err != nil:
		return joined, err
	case covered && len(pending) == 0:
		// Nothing to send, but the member's queue is too full to hand
		// over into: wait for its writer.
		return false, rs.m.WaitRoom(ctx, 1, maxResponseLen)
	case covered:
		return false, rs.send(ctx, pending)
	}
	return false, rs.readStore(ctx)
}

// send queues frames to the member, waiting for room in its queue.
func (rs *resume) send(ctx context.Context, frames []*wire.Frame) error {
	for _, f := range frames {
		if err := rs.m.Send(ctx, f); err != nil {
			return err
		}
		rs.cursor = f.Seq
		rs.replayed++
	}
	return nil
}

// readStore sends the events from the cursor up to where the room's tail
// begins, read from the stream. Resumes of one room from about the same
// position share the read (see seed.go): one reads, the others wait for it
// to extend the tail and find the events there in the next round.
func (rs *resume) readStore(ctx context.Context) error {
	// A client that read too much from the stream lately waits here,
	// before it may start a read that others would wait for (its reads
	// alone are paced batch by batch).
	shared, err := rs.h.src.AwaitBudget(ctx)
	if err != nil {
		return err
	}
	switch s, mine := rs.rm.startSeed(rs.cursor, rs.epoch); {
	case mine:
		return rs.seed(shared, s)
	case s != nil && !rs.waited:
		// Once only: a read that could not extend the tail (its start
		// is no event of the room, so it cannot prove itself complete)
		// leaves its waiters where they were, and waiting for the next
		// such read, one after another, would use up their rounds.
		rs.waited = true
		return s.wait(ctx)
	}
	target := rs.rm.tailStart()
	rs.fromStore = true
	intact, err := rs.h.src.Replay(ctx, rs.rm.name, rs.cursor, target, func(ev *wire.Event) error {
		rs.cursor = ev.Seq
		if ev.Err != nil {
			return nil
		}
		rs.replayed++
		return rs.m.Send(ctx, wire.EventFrame(ev))
	})
	if err != nil {
		return err
	}
	rs.recovered = rs.recovered && intact
	rs.cursor = max(rs.cursor, target) // bad events and removed ones count as seen
	return nil
}

// tailStart is the position the tail reaches back to.
func (rm *room) tailStart() uint64 {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.tailFrom
}

// handOver makes m a live member if the tail covers everything after
// cursor and the tail's frames past cursor fit in m's queue: it queues
// them, adds m and calls onJoined, all under mu, so no live event falls
// between. When the tail covers the cursor but holds too much to force,
// it returns those frames (covered) to be sent paced first. It fails with
// ErrStreamReset when the stream was reset since the resume began.
func (rm *room) handOver(m Member, cursor, epoch uint64, onJoined func(seq uint64, fromTail int)) (joined bool, pending []*wire.Frame, covered bool, err error) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.epoch != epoch {
		return false, nil, false, ErrStreamReset
	}
	if cursor < rm.tailFrom && cursor < rm.lastSeq {
		return false, nil, false, nil
	}
	tail := rm.tail[sort.Search(len(rm.tail), func(i int) bool { return rm.tail[i].Seq > cursor }):]
	size := 0
	for _, f := range tail {
		size += f.Len()
	}
	// One frame more: the subscribe response, which onJoined forces in.
	if len(tail) > maxHandOver || !m.CanTake(len(tail)+1, size+maxResponseLen) {
		return false, append([]*wire.Frame(nil), tail...), true, nil
	}
	for _, f := range tail {
		m.Force(f) // they fit; forced so a concurrent fan-out cannot refuse them
	}
	rm.add(m)
	onJoined(rm.lastSeq, len(tail))
	return true, nil, true, nil
}
