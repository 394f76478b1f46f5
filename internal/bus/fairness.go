package bus

import (
	"context"
	"sync"
	"time"

	"github.com/roomcast/roomcast/internal/requester"
)

// The node's stream reads share MaxConcurrentReads slots. First come,
// first served would let one client that keeps asking for its rooms'
// whole history hold every slot, and everyone else's resume wait behind
// it. So requests carry who asks (requester.With: one identity per client
// connection), and a free slot goes round robin over the readers that
// wait, one request per reader per turn, the reader holding the fewest
// slots first (a newcomer does not wait for a whole turn of busy
// readers). Besides:
//   - a reader holds at most readerShare slots: a replay needs two (its
//     read under way and the next batch asked for ahead, see prefetch.go,
//     or that and a leader get), more would only take them from others;
//   - a room's readers together hold at most roomShare slots (half), so
//     a crowd in one room (a reconnect storm, or many connections of one
//     client) leaves the other half to every other room;
//   - requests without a reader are the node's own: the backfills and
//     syncs that keep every member of a room live, bounded by the node's
//     rooms, not by what clients ask. They go first, before any client's,
//     and ignore the room share, but hold at most nodeShare slots (half),
//     so a node backfilling many rooms at once (after a reconnect) still
//     leaves the other half to clients' resumes.

// readerOf is the reader of ctx (requester.With), nil for the node's own
// reads.
func readerOf(ctx context.Context) any { return requester.Of(ctx) }

// scheduler hands out the read slots.
type scheduler struct {
	slots                             int
	readerShare, roomShare, nodeShare int
	pace                              pacing

	mu      sync.Mutex
	used    int                  // slots held
	rooms   map[string]int       // slots held per room (room "" is not counted)
	readers map[any]*readerState // readers holding, waiting or paced
	ring    []*readerState       // readers with requests waiting, in turn order
	next    int                  // the ring index whose turn is next
	node    readerState          // the node's own reads
	waiting int                  // requests waiting, for the gauge
	onWait  func(waiting int)    // reports waiting's changes
	swept   time.Time            // when paced readers were last swept
}

// readerState is one reader's slots and requests.
type readerState struct {
	id      any
	held    int
	queue   []*slotWait // its requests waiting, oldest first
	inRing  bool
	budget  budget // its pacing (pace.go)
	pending int    // acquires under way: it is not forgotten meanwhile
}

// slotWait is one request waiting for a slot.
type slotWait struct {
	room    string
	granted chan struct{} // closed when the slot is the request's
}

func newScheduler(slots int, pace pacing, onWait func(int)) *scheduler {
	half := max(slots/2, 1)
	return &scheduler{
		slots: slots, readerShare: min(2, slots), roomShare: half, nodeShare: half,
		pace: pace, rooms: make(map[string]int), readers: make(map[any]*readerState), onWait: onWait,
	}
}

// acquire waits for a slot for a request of reader id (nil: the node)
// about room ("" when it reads many rooms), for as long as ctx allows,
// and returns the function that gives the slot back.
func (s *scheduler) acquire(ctx context.Context, id any, room string) (release func(), err error) {
	s.mu.Lock()
	rs := s.reader(id)
	w := &slotWait{room: room, granted: make(chan struct{})}
	rs.queue = append(rs.queue, w)
	if id != nil && !rs.inRing {
		rs.inRing = true
		s.ring = append(s.ring, rs)
	}
	s.setWaiting(1)
	s.dispatch()
	s.mu.Unlock()
	release = func() { s.release(rs, room) }
	select {
	case <-w.granted:
		return release, nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-w.granted: // granted meanwhile: give it back
		s.releaseLocked(rs, room)
	default:
		s.dequeue(rs, w)
	}
	s.done(rs)
	return nil, ctx.Err()
}

// reader returns id's state, made if need be. Needs mu.
func (s *scheduler) reader(id any) *readerState {
	if id == nil {
		return &s.node
	}
	rs := s.readers[id]
	if rs == nil {
		rs = &readerState{id: id}
		s.readers[id] = rs
	}
	rs.pending++
	return rs
}

// done forgets a reader that holds and waits for nothing and owes its
// pacing nothing. Needs mu.
func (s *scheduler) done(rs *readerState) {
	if rs == &s.node {
		return
	}
	rs.pending--
	if rs.pending == 0 && rs.held == 0 && len(rs.queue) == 0 && rs.budget.idle(s.pace) {
		delete(s.readers, rs.id)
	}
}

func (s *scheduler) release(rs *readerState, room string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(rs, room)
	s.done(rs)
}

// releaseLocked gives a slot back and hands it on. Needs mu.
func (s *scheduler) releaseLocked(rs *readerState, room string) {
	s.used--
	rs.held--
	if room != "" {
		if s.rooms[room]--; s.rooms[room] == 0 {
			delete(s.rooms, room)
		}
	}
	s.dispatch()
}

// dispatch grants free slots: to the node's own reads first, then round
// robin over the readers that wait. Needs mu.
func (s *scheduler) dispatch() {
	for s.used < s.slots {
		rs, i := s.pick()
		if rs == nil {
			return
		}
		s.grant(rs, i)
	}
}

// pick chooses the next request: its reader and its index in the
// reader's queue; nil when no waiting request may have a slot now.
func (s *scheduler) pick() (*readerState, int) {
	if s.node.held < s.nodeShare && len(s.node.queue) > 0 {
		return &s.node, 0
	}
	var best *readerState
	bestIdx, bestRing := -1, -1
	for k := range s.ring {
		ri := (s.next + k) % len(s.ring)
		rs := s.ring[ri]
		if rs.held >= s.readerShare || (best != nil && rs.held >= best.held) {
			continue
		}
		if i := s.eligible(rs); i >= 0 {
			best, bestIdx, bestRing = rs, i, ri
		}
	}
	if best != nil {
		s.next = bestRing + 1 // the turn moves past the reader served
	}
	return best, bestIdx
}

// eligible is the index of rs's oldest request whose room is under its
// share, -1 if none.
func (s *scheduler) eligible(rs *readerState) int {
	for i, w := range rs.queue {
		if w.room == "" || s.rooms[w.room] < s.roomShare {
			return i
		}
	}
	return -1
}

// grant gives a slot to rs's request i. Needs mu.
func (s *scheduler) grant(rs *readerState, i int) {
	w := rs.queue[i]
	s.dequeue(rs, w)
	s.used++
	rs.held++
	if w.room != "" {
		s.rooms[w.room]++
	}
	close(w.granted)
}

// dequeue takes w out of rs's queue, and rs out of the ring when nothing
// of it waits any more. Needs mu.
func (s *scheduler) dequeue(rs *readerState, w *slotWait) {
	for i, q := range rs.queue {
		if q == w {
			rs.queue = append(rs.queue[:i], rs.queue[i+1:]...)
			break
		}
	}
	s.setWaiting(-1)
	if len(rs.queue) > 0 || !rs.inRing {
		return
	}
	rs.inRing = false
	for i, r := range s.ring {
		if r == rs {
			s.ring = append(s.ring[:i], s.ring[i+1:]...)
			if i < s.next {
				s.next--
			}
			break
		}
	}
	if s.next >= len(s.ring) {
		s.next = 0
	}
}

// setWaiting moves the count of waiting requests by d. Needs mu.
func (s *scheduler) setWaiting(d int) {
	s.waiting += d
	if s.onWait != nil {
		s.onWait(s.waiting)
	}
}

// held is the number of slots taken, for tests.
func (s *scheduler) held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}
