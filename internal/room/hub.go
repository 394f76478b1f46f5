// Package room keeps the rooms of one edge node: who is a member of which
// room, the room's live feed from the bus (subscribed while the room has a
// member, unsubscribed when the last one leaves), its place in the stream, and
// the fan-out of each event to the members.
//
// The guarantees the Hub gives its callers:
//   - A room's events reach its members in stream order, each at most once:
//     a duplicate on the live feed is dropped, and a gap (the event's previous
//     sequence is not the last one delivered) is backfilled from the stream
//     before the event is delivered.
//   - Each event is encoded once; the same frame is queued to every member
//     without blocking (see Member).
//   - A member's join is ordered with the feed: the callback run on joining
//     sees the room's last delivered sequence, and every later event is
//     delivered to the member.
//   - A lost tail is found without a later event: a sync loop compares
//     every room's position with the stream's heads (a few batched
//     requests for all rooms) every AntiEntropyInterval, at once after a
//     reconnection (Resync) and when a live subscription drops messages,
//     and delivers what is missing. Rooms that fail to sync retry with
//     exponential backoff and jitter, batched, so an outage does not turn
//     into a storm of requests.
//   - A recreated stream is noticed (its identity changes): every member
//     is closed with 4010 and the rooms start again in the new stream; a
//     stream that has gone is created again.
package room

import (
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/wire"
)

// Member receives a room's event frames. Enqueue must not block; a member
// that cannot keep up deals with it itself (a connection closes with 4008).
// Send may wait for room in the member's queue; replays use it. A resume's
// hand-over asks CanTake whether the frames that must follow the replay at
// once fit, then Forces them (and the response) in; when they do not,
// WaitRoom waits for the member's writer to make room. Close ends the
// member (a stream reset closes every member with 4010).
type Member interface {
	Enqueue(f *wire.Frame) bool
	Send(ctx context.Context, f *wire.Frame) error
	Force(f *wire.Frame) bool
	CanTake(frames, bytes int) bool
	WaitRoom(ctx context.Context, frames, bytes int) error
	Close(code ws.StatusCode, reason string)
}

// Source is what the Hub needs of the bus (bus.Bus implements it). Each
// call is one or a few bounded requests.
type Source interface {
	// SubscribeLive delivers room r's live events to onEvent, one at a
	// time, and calls onDrop when the subscription dropped some. onEvent
	// must not block: one dispatcher may serve every room.
	SubscribeLive(r wire.Room, onEvent func(*wire.Event), onDrop func()) (unsubscribe func() error, err error)
	// Heads returns the sequence of each room's latest stored event
	// (rooms with none are absent) and the stream's last sequence, as a
	// replica that may lag behind the stream leader knows them.
	Heads(ctx context.Context, rooms []wire.Room) (heads map[wire.Room]uint64, streamLast uint64, err error)
	// LeaderHead is room r's latest stored event as the stream leader
	// knows it.
	LeaderHead(ctx context.Context, r wire.Room) (uint64, error)
	// Replay calls fn with room r's stored events in (after, until], in
	// order; intact reports that none of them was removed before it was
	// read.
	Replay(ctx context.Context, r wire.Room, after, until uint64, fn func(*wire.Event) error) (intact bool, err error)
	// StreamState is the stream's identity and extent; wire.ErrStreamGone
	// when it does not exist.
	StreamState(ctx context.Context) (wire.StreamState, error)
	// HoldsAll reports whether the stream holds every event ever stored
	// under its name (wire.StreamState.HoldsAll); it may be a second old.
	HoldsAll(ctx context.Context) (bool, error)
	// EnsureStream creates the stream when it does not exist.
	EnsureStream(ctx context.Context) error
	// State reads room r's keyed state (bus.Bus.State): the latest event
	// of each key, exact as of its position; concurrent reads of a room
	// are shared.
	State(ctx context.Context, r wire.Room) (wire.RoomState, error)
	// Stored reports whether room r's event at seq is still stored.
	Stored(ctx context.Context, r wire.Room, seq uint64) (bool, error)
	// AwaitBudget waits until the client whose reads ctx carries may
	// read from the stream again, and returns the context for a read
	// that other resumes wait for: charged to that client, never held
	// back midway.
	AwaitBudget(ctx context.Context) (context.Context, error)
}

// Options configure a Hub. Zero fields take defaults; Source, Logger and
// Metrics are required.
type Options struct {
	Source  Source
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// AntiEntropyInterval is how often every room's position is checked
	// against the stream; it bounds how long a lost last event of a room
	// stays undelivered.
	AntiEntropyInterval time.Duration
	// RetryDelay is the first wait before a room that failed to sync tries
	// again; it doubles (with jitter) up to MaxRetryDelay.
	RetryDelay    time.Duration
	MaxRetryDelay time.Duration
	// TailEvents and TailBytes bound the frames each room keeps of its
	// latest events for resumes; 0 takes the defaults, negative keeps none.
	// While a resume of the room is catching up, the tail may hold up to
	// CatchUpTailEvents and CatchUpTailBytes, so the resume can hand over
	// to the live feed even when the room is busy or its events large.
	TailEvents        int
	TailBytes         int
	CatchUpTailEvents int
	CatchUpTailBytes  int
	// CatchUpMemory bounds what catch-ups hold on top of the rooms' steady
	// tails (see catchUpMemory); DefaultCatchUpMemory when 0.
	CatchUpMemory int64
}

// Defaults of Options.
const (
	DefaultAntiEntropyInterval = 5 * time.Second
	DefaultRetryDelay          = 100 * time.Millisecond
	DefaultMaxRetryDelay       = 10 * time.Second
	DefaultTailEvents          = 128
	DefaultTailBytes           = 64 << 10
	DefaultCatchUpTailEvents   = 1024
	DefaultCatchUpTailBytes    = 4 << 20
)

func (o Options) withDefaults() Options {
	dur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	dur(&o.AntiEntropyInterval, DefaultAntiEntropyInterval)
	dur(&o.RetryDelay, DefaultRetryDelay)
	dur(&o.MaxRetryDelay, DefaultMaxRetryDelay)
	switch {
	case o.TailEvents == 0:
		o.TailEvents = DefaultTailEvents
	case o.TailEvents < 0:
		o.TailEvents = 0
	}
	if o.TailBytes <= 0 {
		o.TailBytes = DefaultTailBytes
	}
	if o.CatchUpTailEvents <= 0 {
		o.CatchUpTailEvents = DefaultCatchUpTailEvents
	}
	if o.CatchUpMemory <= 0 {
		o.CatchUpMemory = DefaultCatchUpMemory
	}
	if o.CatchUpTailBytes <= 0 {
		o.CatchUpTailBytes = DefaultCatchUpTailBytes
	}
	return o
}

const shardCount = 64

// Hub is the registry of one node's rooms. Its methods are safe for
// concurrent use.
type Hub struct {
	// Set at construction.
	src    Source
	log    *slog.Logger
	m      *metrics.Metrics
	opts   Options
	seed   maphash.Seed
	ctx    context.Context // ends with Close; bounds backfills and the sync loop
	cancel context.CancelFunc
	events prometheus.Counter // websocket_messages_total{message_type="event"}
	loop   chan struct{}      // closed when the sync loop has ended

	feeders group // the rooms' feed goroutines
	tail    tailBounds

	shards [shardCount]shard
	sync   syncState

	delivered atomic.Uint64 // events delivered, every room together (stats.go)
	rates     rateBook      // the rooms' event rates at the last Sample
}

type shard struct {
	mu    sync.Mutex
	rooms map[string]*room // guarded by mu
}

// New returns an empty Hub and starts its sync loop; Close stops it.
func New(o Options) *Hub {
	o = o.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{src: o.Source, log: o.Logger, m: o.Metrics, opts: o, seed: maphash.MakeSeed(), ctx: ctx, cancel: cancel,
		events: o.Metrics.Messages.WithLabelValues(wire.TypeEvent), loop: make(chan struct{}),
		tail: tailBounds{o.TailEvents, o.TailBytes, o.CatchUpTailEvents, o.CatchUpTailBytes,
			&catchUpMemory{limit: o.CatchUpMemory, gauge: o.Metrics.CatchUpBytes}}}
	for i := range h.shards {
		h.shards[i].rooms = make(map[string]*room)
	}
	h.sync.init()
	go h.runSync()
	return h
}

// Close stops the sync loop and backfills and waits for the loop and the
// rooms' feed goroutines. Members stay; the caller closes connections.
func (h *Hub) Close() {
	h.cancel()
	<-h.loop
	h.feeders.Close()
}

func (h *Hub) shard(name string) *shard {
	return &h.shards[maphash.String(h.seed, name)%shardCount]
}

// Joined describes a completed join, for the subscribe response.
type Joined struct {
	Seq       uint64 // the room's last delivered sequence: m gets every later event
	Replayed  int    // events replayed to m before it joined the live feed
	Recovered bool   // nothing between since and Seq was lost to retention
	Epoch     string // the stream Seq is a position in (wire.StreamID.Epoch)
}

// Position is where a resume starts: after Since in the stream whose epoch
// is Epoch. Without an epoch Since is taken to be in the current stream
// unless it is recognisably older (below the first sequence of a stream an
// edge recreated, or past the stream's end).
type Position struct {
	Since uint64
	Epoch string
}

// ErrStreamReset is returned by a join whose resume spanned a stream reset:
// its position means nothing in the new stream (close code 4010).
var ErrStreamReset = errors.New("the stream was recreated during the resume")

// Join makes m a member of room r. With since, m first receives every stored
// event of the room after since, then the live ones, with no gap and no
// duplicate between the two. onJoined runs once m is a member, under the
// room's lock: what it queues to m comes after the replay and before every
// live event. Join fails when the room's feed cannot be set up or the
// replay cannot be read (the bus is unavailable), or m closes meanwhile.
func (h *Hub) Join(ctx context.Context, r wire.Room, m Member, since *uint64, onJoined func(Joined)) error {
	if since == nil {
		return h.JoinFrom(ctx, r, m, nil, onJoined)
	}
	return h.JoinFrom(ctx, r, m, &Position{Since: *since}, onJoined)
}

// JoinFrom is Join from a position that may name its stream: a position
// from another stream than the room's resumes from the start and is not
// recovered.
func (h *Hub) JoinFrom(ctx context.Context, r wire.Room, m Member, from *Position, onJoined func(Joined)) error {
	rm, err := h.enter(ctx, r)
	if err != nil {
		return err
	}
	return h.joinEntered(ctx, rm, m, from, onJoined)
}

// enter takes a reference to room r for a join, once the room is set up;
// the join releases it unless its member joins.
func (h *Hub) enter(ctx context.Context, r wire.Room) (*room, error) {
	rm, created := h.acquire(r)
	if created {
		h.setUp(rm)
	}
	if !rm.ready.Fired() {
		// Only when another join is still setting the room up: ctx's
		// channel, which may cost the member one, is not asked for
		// otherwise.
		select {
		case <-rm.ready.Done():
		case <-ctx.Done():
			h.release(rm)
			return nil, ctx.Err()
		}
	}
	if rm.setUpErr != nil {
		h.release(rm)
		return nil, rm.setUpErr
	}
	return rm, nil
}

// joinEntered is JoinFrom once the room is entered.
func (h *Hub) joinEntered(ctx context.Context, rm *room, m Member, from *Position, onJoined func(Joined)) error {
	if from == nil {
		rm.mu.Lock()
		rm.add(m)
		onJoined(Joined{Seq: rm.lastSeq, Recovered: true, Epoch: rm.stream})
		rm.mu.Unlock()
		return nil
	}
	if err := h.catchUp(ctx, rm, m, *from, onJoined); err != nil {
		h.release(rm)
		return err
	}
	return nil
}

// Leave removes m from room r; the last member's leaving ends the room's
// live subscription. It reports whether m was a member.
func (h *Hub) Leave(r wire.Room, m Member) bool {
	sh := h.shard(r.String())
	sh.mu.Lock()
	rm := sh.rooms[r.String()]
	sh.mu.Unlock()
	if rm == nil {
		return false
	}
	// m's membership holds a reference, so rm stays registered until the
	// release below; if m is not a member, rm may be going, which is fine.
	// The room's lock is not taken under the shard's: a large room's
	// fan-out holds it for a while.
	rm.mu.Lock()
	was := rm.remove(m)
	rm.mu.Unlock()
	if hm, ok := m.(heldMember); ok && was {
		hm.Flush() // frames held for a burst that is still being fanned out
	}
	if was {
		h.release(rm)
	}
	return was
}

// Rooms is the number of rooms with members or joins under way.
func (h *Hub) Rooms() int {
	n := 0
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		n += len(sh.rooms)
		sh.mu.Unlock()
	}
	return n
}

// Members returns the number of members of room r on this node.
func (h *Hub) Members(r wire.Room) int {
	sh := h.shard(r.String())
	sh.mu.Lock()
	rm := sh.rooms[r.String()]
	sh.mu.Unlock()
	if rm == nil {
		return 0
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return len(rm.members)
}

// acquire returns room r, creating it if needed, and takes a reference that
// keeps it registered until release.
func (h *Hub) acquire(r wire.Room) (rm *room, created bool) {
	sh := h.shard(r.String())
	sh.mu.Lock()
	defer sh.mu.Unlock()
	rm = sh.rooms[r.String()]
	if rm == nil {
		rm = newRoom(r, h.m)
		sh.rooms[r.String()] = rm
		created = true
		h.m.Rooms.Inc()
	}
	rm.refs++
	return rm, created
}

// release drops a reference; the last one unregisters the room and ends its
// live subscription.
func (h *Hub) release(rm *room) {
	sh := h.shard(rm.name.String())
	sh.mu.Lock()
	rm.refs--
	last := rm.refs == 0
	if last {
		delete(sh.rooms, rm.name.String())
		h.m.Rooms.Dec()
	}
	sh.mu.Unlock()
	if last {
		rm.tearDown(h.log, h.tail)
	}
}
