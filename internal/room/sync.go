package room

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roomcast/roomcast/internal/wire"
)

// syncState is the work of the hub's sync loop: which rooms to bring up to
// the stream, and when. Anything may ask for work (schedule, resyncAll,
// checkStream); the loop (runSync) does it, one room at a time, so however
// many rooms are behind, their syncs add one request at a time to the
// stream. (A live gap is still backfilled at once on the room's own feed,
// and a resume ahead of the node syncs its room itself.)
type syncState struct {
	kick chan struct{} // capacity 1: there is new work

	mu      sync.Mutex
	all     bool                // guarded by mu: check every room
	checkID bool                // guarded by mu: check the stream's identity
	fresh   bool                // guarded by mu: news (a reconnection) ends the backoff
	due     map[*room]time.Time // guarded by mu: rooms to sync, and from when

	// Guarded by mu too: the backoff after failed checks.
	failures  int       // failed checks in a row
	notBefore time.Time // no check before then

	// Guarded by mu too: rooms set up since the last full check read their
	// heads as of setUpFrom at the oldest (see noteSetUp).
	setUps    bool
	setUpFrom uint64

	// Owned by the loop.
	checkedUpTo uint64 // the stream position of the last full check
	configure   bool   // a recreated stream still needs the edge's configuration

	id   atomic.Pointer[wire.StreamID] // the stream's identity, once known
	idMu sync.Mutex                    // one read of the identity before the loop knows it
}

func (s *syncState) init() {
	s.kick = make(chan struct{}, 1)
	s.due = make(map[*room]time.Time)
}

func (s *syncState) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// schedule asks for a sync of rm: now for attempt 0, otherwise after an
// exponential backoff with jitter. It returns the delay.
func (h *Hub) schedule(rm *room, attempt int) time.Duration {
	d := backoff(attempt, h.opts.RetryDelay, h.opts.MaxRetryDelay)
	s := &h.sync
	s.mu.Lock()
	s.dueAtLocked(rm, time.Now().Add(d))
	s.mu.Unlock()
	s.wake()
	return d
}

// backoff is the wait before the attempt-th retry: RetryDelay doubling up
// to MaxRetryDelay, spread by ±50% so rooms and edges that failed together
// do not retry together.
func backoff(attempt int, base, ceiling time.Duration) time.Duration {
	if attempt <= 0 {
		return 0
	}
	d := base
	for i := 1; i < attempt && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	return d/2 + rand.N(d)
}

// resyncAll asks for every room to be checked against the stream, at once,
// even while failed checks back off: it is called when something changed.
func (s *syncState) resyncAll() {
	s.mu.Lock()
	s.all, s.fresh = true, true
	s.mu.Unlock()
	s.wake()
}

// noteSetUp records that a room was set up from heads read as of upTo. The
// full check that found every room at its head does not vouch for it: the
// replica that answered may lag behind where that check read, and then the
// room starts behind with nothing to reveal it until something new is
// stored. So a full check is skipped only when every room set up since
// read at least as far as the stream now reaches.
func (s *syncState) noteSetUp(upTo uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.setUps || upTo < s.setUpFrom {
		s.setUps, s.setUpFrom = true, upTo
	}
}

// takeSetUps returns and forgets the oldest position rooms set up since the
// last call read from (ok is false when none was set up).
func (s *syncState) takeSetUps() (from uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	from, ok = s.setUpFrom, s.setUps
	s.setUps, s.setUpFrom = false, 0
	return from, ok
}

// checkStream asks for the stream's identity to be checked, at once.
func (s *syncState) checkStream() {
	s.mu.Lock()
	s.checkID = true
	s.mu.Unlock()
	s.wake()
}

// take returns the work due now and when the next scheduled sync is due.
// While failures back off (until notBefore) nothing is due but what news
// asked for.
func (s *syncState) take(now time.Time) (all, checkID bool, rooms []*room, next time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fresh {
		s.fresh, s.notBefore, s.failures = false, time.Time{}, 0
	}
	if now.Before(s.notBefore) {
		return false, false, nil, s.notBefore
	}
	all, checkID = s.all, s.checkID
	s.all, s.checkID = false, false
	for rm, at := range s.due {
		if all || !at.After(now) {
			rooms = append(rooms, rm)
			delete(s.due, rm)
		} else if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return all, checkID, rooms, next
}

// Resync checks every room against the stream at once, for when the live
// feed may have missed events (after a NATS reconnection, a stream leader
// change).
func (h *Hub) Resync() { h.sync.resyncAll() }

// CheckStream checks the stream's identity at once (after a stream
// advisory says it was created or deleted).
func (h *Hub) CheckStream() { h.sync.checkStream() }

// runSync is the sync loop: every AntiEntropyInterval, and whenever work is
// asked for, it checks the stream's identity and brings rooms up to the
// stream.
func (h *Hub) runSync() {
	defer close(h.loop)
	tick := time.NewTicker(h.opts.AntiEntropyInterval)
	defer tick.Stop()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	h.sync.checkStream() // learn the identity at start
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-tick.C:
			h.sync.mu.Lock()
			h.sync.all, h.sync.checkID = true, true
			h.sync.mu.Unlock()
		case <-h.sync.kick:
		case <-retry.C:
		}
		next := h.syncOnce()
		if !next.IsZero() {
			retry.Reset(time.Until(next))
		}
	}
}

// syncOnce does the work due now and returns when the next scheduled sync
// is due (zero when none is).
func (h *Hub) syncOnce() time.Time {
	all, checkID, rooms, next := h.sync.take(time.Now())
	var setUpFrom uint64
	var setUps bool
	if all {
		// Taken before the rooms are listed: a room that becomes ready
		// after the list notes its set-up for the next check.
		setUpFrom, setUps = h.sync.takeSetUps()
	}
	if checkID || all {
		st, changed, ok := h.checkIdentity()
		if !ok {
			h.putBackSetUps(setUpFrom, setUps)
			h.retryLater(all, checkID, rooms)
			return h.nextDue(next)
		}
		if all && !changed && st.LastSeq == h.sync.checkedUpTo && (!setUps || setUpFrom >= st.LastSeq) {
			// Nothing was stored since the last full check, which left
			// every room at its head, and every room set up since read
			// as far: only rooms due on their own remain.
			all = false
		}
		all = all || changed
	}
	if all {
		rooms = h.readyRooms()
	}
	if len(rooms) == 0 {
		return next
	}
	names := make([]wire.Room, len(rooms))
	for i, rm := range rooms {
		names[i] = rm.name
	}
	heads, upTo, err := h.src.Heads(h.ctx, names)
	if err != nil {
		h.log.Warn("cannot check rooms against the stream; will retry", "rooms", len(rooms), "err", err)
		h.putBackSetUps(setUpFrom, setUps)
		h.retryLater(all, false, rooms)
		return h.nextDue(next)
	}
	h.sync.mu.Lock()
	h.sync.failures = 0
	h.sync.mu.Unlock()
	if all {
		h.sync.checkedUpTo = upTo
	}
	for _, rm := range rooms {
		h.syncRoom(rm, heads[rm.name])
	}
	return h.nextDue(next)
}

// putBackSetUps keeps, for the next full check, the set-ups a check that
// failed took.
func (h *Hub) putBackSetUps(from uint64, ok bool) {
	if ok {
		h.sync.noteSetUp(from)
	}
}

// retryLater puts work that failed back, and holds every check back until
// a backoff has passed: when the stream cannot be reached, one request per
// attempt finds out, and attempts thin out.
func (h *Hub) retryLater(all, checkID bool, rooms []*room) {
	s := &h.sync
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures++
	s.notBefore = time.Now().Add(backoff(s.failures, h.opts.RetryDelay, h.opts.MaxRetryDelay))
	s.all = s.all || all
	s.checkID = s.checkID || checkID
	for _, rm := range rooms {
		s.dueAtLocked(rm, s.notBefore)
	}
}

func (s *syncState) dueAtLocked(rm *room, at time.Time) {
	if old, ok := s.due[rm]; !ok || at.Before(old) {
		s.due[rm] = at
	}
}

// nextDue is the earliest of next and what is scheduled now.
func (h *Hub) nextDue(next time.Time) time.Time {
	s := &h.sync
	s.mu.Lock()
	defer s.mu.Unlock()
	if (s.all || s.checkID) && (next.IsZero() || s.notBefore.Before(next)) {
		next = s.notBefore
	}
	for _, at := range s.due {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next
}

// syncRoom brings rm up to head, the latest stored event of the room.
func (h *Hub) syncRoom(rm *room, head uint64) {
	if rm.isTornDown() {
		return
	}
	rm.feedMu.Lock()
	defer rm.feedMu.Unlock()
	// A live event dropped while the room was stale is stored: it is a
	// head too, perhaps newer than the one read.
	head = max(head, rm.staleSeen)
	rm.stale, rm.staleSeen = false, 0
	last := rm.last()
	if head <= last {
		rm.syncAttempts = 0
		return // up to date, or the answering replica lags: nothing to do
	}
	h.m.Gaps.Inc()
	_ = h.backfill(rm, last, head) // a failure schedules the next try
}

// readyRooms returns the rooms whose set-up succeeded.
func (h *Hub) readyRooms() []*room {
	var out []*room
	for _, rm := range h.snapshot() {
		// A room still setting up reads its position itself.
		if rm.ready.Fired() && rm.setUpErr == nil {
			out = append(out, rm)
		}
	}
	return out
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

// checkIdentity reads the stream's identity and acts on a change: a stream
// that has gone is created again; a stream that is not the one the rooms
// were reading resets them, once per new identity. ok is false when the
// stream could not be read, created or configured.
func (h *Hub) checkIdentity() (st wire.StreamState, changed, ok bool) {
	st, err := h.src.StreamState(h.ctx)
	if errors.Is(err, wire.ErrStreamGone) {
		h.log.Warn("the stream has gone; creating it again")
		if err = h.src.EnsureStream(h.ctx); err == nil {
			st, err = h.src.StreamState(h.ctx)
		}
	}
	if err != nil {
		h.log.Warn("cannot read the stream's identity; will retry", "err", err)
		return st, false, false
	}
	old := h.sync.id.Swap(&st.ID)
	if old != nil && !old.Equal(st.ID) {
		h.sync.checkedUpTo = 0
		h.sync.configure = true
		h.reset(*old, st)
		changed = true
	}
	if h.sync.configure {
		// A stream made by someone else may lack what edges rely on
		// (direct gets, the republish): bring the edge's configuration
		// back, retrying with the others until it takes. Meanwhile the
		// members closed by the reset get UNAVAILABLE and retry.
		if err := h.src.EnsureStream(h.ctx); err != nil {
			h.log.Warn("cannot configure the recreated stream; will retry", "err", err)
			return st, changed, false
		}
		h.sync.configure = false
	}
	return st, changed, true
}

// reset starts every room again in a new stream: what the rooms delivered
// was from the old one, so their members are closed with 4010 (they
// subscribe again, and a position from the old stream gets recovered:
// false). Each room starts at the new stream's last sequence, a position
// no room's head is past, so no event already in the new stream is sent
// to a member joining live; the sync that follows finds nothing to do, and
// what is stored next arrives live.
func (h *Hub) reset(old wire.StreamID, now wire.StreamState) {
	h.m.StreamResets.Inc()
	// Rooms still setting up too: one that read its epoch before the
	// identity changed would keep it for good (restart waits for its
	// set-up to end).
	rooms := h.snapshot()
	h.log.Warn("the stream was recreated; closing members of every room so they subscribe again",
		"rooms", len(rooms), "old_created", old.Created, "new_created", now.ID.Created, "new_first_seq", now.ID.BaseSeq)
	for _, rm := range rooms {
		for _, m := range rm.restart(now.LastSeq, now.ID.Epoch(), h.tail) {
			m.Close(wire.CloseStreamReset, "the stream was recreated; subscribe again")
		}
	}
}

// restart moves the room to seq in a new stream, whose epoch is stream, and
// returns its members, who are to be closed.
func (rm *room) restart(seq uint64, stream string, b tailBounds) []Member {
	rm.feedMu.Lock()
	defer rm.feedMu.Unlock()
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.stale, rm.staleSeen = false, 0
	rm.syncAttempts = 0
	rm.epoch++
	rm.setPosition(seq, stream, b)
	return append([]Member(nil), rm.members...)
}

// streamID is the identity of the stream the rooms read: the sync loop's,
// or, before the loop has learnt it (a node just started), read once from
// the leader for every room set up meanwhile.
func (h *Hub) streamID(ctx context.Context) (wire.StreamID, error) {
	if id := h.sync.id.Load(); id != nil {
		return *id, nil
	}
	h.sync.idMu.Lock()
	defer h.sync.idMu.Unlock()
	if id := h.sync.id.Load(); id != nil {
		return *id, nil
	}
	st, err := h.src.StreamState(ctx)
	if err != nil {
		return wire.StreamID{}, fmt.Errorf("the stream's identity: %w", err)
	}
	// The loop's first check finds the same identity: no reset.
	h.sync.id.CompareAndSwap(nil, &st.ID)
	return *h.sync.id.Load(), nil
}

// baseSeq is the first sequence of the stream the rooms read, 0 while its
// identity is not known.
func (h *Hub) baseSeq() uint64 {
	if id := h.sync.id.Load(); id != nil {
		return id.BaseSeq
	}
	return 0
}
