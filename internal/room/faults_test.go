package room

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// withSource replaces the fixture's hub by one reading through src, which
// wraps the real bus.
func (f *fixture) withSource(t *testing.T, src Source, edit func(*Options)) {
	t.Helper()
	f.hub.Close()
	o := Options{Source: src, Logger: natstest.Quiet, Metrics: f.m, RetryDelay: 20 * time.Millisecond, MaxRetryDelay: 100 * time.Millisecond}
	if edit != nil {
		edit(&o)
	}
	f.hub = New(o)
	t.Cleanup(f.hub.Close)
}

// waitForStreamID waits until the hub's sync loop knows the stream's
// identity: a stream recreated before that is the first one it sees, not
// a recreation.
func (f *fixture) waitForStreamID(t *testing.T) {
	t.Helper()
	natstest.WaitFor(t, 10*time.Second, func() error {
		if f.hub.sync.id.Load() == nil {
			return errors.New("the stream's identity is not known yet")
		}
		return nil
	})
}

// closeCounter is a member that counts the hub's closes.
type closeCounter struct {
	seqMember
	closes atomic.Int64
}

func (c *closeCounter) Close(ws.StatusCode, string) { c.closes.Add(1) }

// Retention removes events a node had not delivered yet (its live feed was
// down longer than the room keeps events): the backfill skips them, and a
// resume from before them must not be told recovered from the tail.
func TestEventsRemovedBeforeDeliveryAreNotRecovered(t *testing.T) {
	f := newFixtureWith(t, bus.StreamConfig{MaxMsgsPerRoom: 5}, func(o *Options) { o.AntiEntropyInterval = time.Hour })
	r := wire.MustRoom("pool:hole")
	m := f.liveMember(t, r)
	s1 := f.room(r).last()
	if err := f.room(r).unsubscribe(); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for i := range 10 {
		seqs = append(seqs, f.publish(t, r, 2+i))
	}
	f.hub.Resync()
	for _, want := range seqs[5:] { // the five the stream still holds
		if got := m.next(t); got != want {
			t.Fatalf("after the outage: seq %d, want %d", got, want)
		}
	}
	late := &seqMember{}
	var j Joined
	if err := f.hub.Join(t.Context(), r, late, &s1, func(x Joined) { j = x }); err != nil {
		t.Fatal(err)
	}
	late.waitFor(t, seqs[5:])
	if j.Recovered {
		t.Fatalf("resume from %d: recovered although %d..%d were removed unseen", s1, seqs[0], seqs[4])
	}
}

// frozenHeads answers Heads from a snapshot, as a replica that stopped
// catching up would. It is a stand-in because a real replica cannot be
// held behind on cue; the leader and the stream behind it are real.
type frozenHeads struct {
	Source
	mu     sync.Mutex
	frozen bool
	heads  map[wire.Room]uint64
	last   uint64
}

func (s *frozenHeads) Heads(ctx context.Context, rooms []wire.Room) (map[wire.Room]uint64, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.frozen {
		h, l, err := s.Source.Heads(ctx, rooms)
		if err == nil {
			s.heads, s.last = h, l
		}
		return h, l, err
	}
	out := map[wire.Room]uint64{}
	for _, r := range rooms {
		if h, ok := s.heads[r]; ok {
			out[r] = h
		}
	}
	return out, s.last, nil
}

// A client that saw events this node has not delivered yet resumes here
// while the replica answering head checks lags: the leader says where the
// room is, and the client gets nothing twice and is told it lost nothing.
func TestAheadClientWithALaggingReplicaGetsNothingTwice(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	src := &frozenHeads{Source: f.bus}
	f.withSource(t, src, func(o *Options) { o.AntiEntropyInterval = time.Hour })
	r := wire.MustRoom("pool:ahead")
	f.liveMember(t, r)
	src.mu.Lock()
	src.frozen = true
	src.mu.Unlock()
	if err := f.room(r).unsubscribe(); err != nil { // this node's live feed is late
		t.Fatal(err)
	}
	f.publish(t, r, 2)
	s3 := f.publish(t, r, 3)

	mem := &seqMember{}
	var j Joined
	if err := f.hub.Join(t.Context(), r, mem, &s3, func(x Joined) { j = x }); err != nil {
		t.Fatal(err)
	}
	src.mu.Lock()
	src.frozen = false // the replica catches up
	src.mu.Unlock()
	s4 := f.publish(t, r, 4)
	f.hub.Resync() // the live feed is gone: the sync brings s4
	mem.waitFor(t, []uint64{s4})
	if j.Seq != s3 || !j.Recovered {
		t.Fatalf("joined %+v, want seq %d and recovered", j, s3)
	}
}

// recreatedStream reports, once recreated is set, a stream with a new
// identity, and with refuse refuses to be configured by the edge (an
// operator's stream the edge may not update). A stand-in: recreating the
// stream for real is TestDeletedStreamIsRecreatedAndClientsAreTold's, and
// the refusal needs permissions the tests' NATS does not have.
type recreatedStream struct {
	Source
	recreated atomic.Bool
	refuse    atomic.Bool
	refusals  atomic.Int64
}

func (s *recreatedStream) StreamState(ctx context.Context) (wire.StreamState, error) {
	st, err := s.Source.StreamState(ctx)
	if s.recreated.Load() {
		st.ID.Created = st.ID.Created.Add(time.Hour)
	}
	return st, err
}

func (s *recreatedStream) EnsureStream(ctx context.Context) error {
	if s.refuse.Load() {
		s.refusals.Add(1)
		return errors.New("permission denied to update the stream")
	}
	return s.Source.EnsureStream(ctx)
}

// A recreated stream the edge cannot configure resets the rooms once: the
// edge goes on trying to configure it, without closing its clients again.
func TestARecreatedStreamResetsRoomsOnce(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	src := &recreatedStream{Source: f.bus}
	src.refuse.Store(true)
	f.withSource(t, src, func(o *Options) { o.AntiEntropyInterval = 50 * time.Millisecond })
	f.waitForStreamID(t)
	r := wire.MustRoom("pool:reset")
	first := &closeCounter{}
	f.join(t, r, first)
	src.recreated.Store(true)
	f.hub.CheckStream()
	natstest.WaitFor(t, 10*time.Second, func() error {
		if first.closes.Load() == 0 {
			return errors.New("not closed")
		}
		return nil
	})
	f.hub.Leave(r, first)
	again := &closeCounter{}
	f.join(t, r, again) // it subscribes again, as a closed client does
	natstest.WaitFor(t, 10*time.Second, func() error {
		if n := src.refusals.Load(); n < 4 {
			return fmt.Errorf("%d attempts to configure the stream", n)
		}
		return nil
	})
	if n := again.closes.Load(); n != 0 || testutil.ToFloat64(f.m.StreamResets) != 1 {
		t.Fatalf("the client that came back was closed %d more times; %v resets, want 1", n, testutil.ToFloat64(f.m.StreamResets))
	}
}

// After a reset, a member joining live gets what is stored from then on,
// never the new stream's history.
func TestLiveMemberAfterAResetGetsNoHistory(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	src := &recreatedStream{Source: f.bus}
	f.withSource(t, src, nil)
	f.waitForStreamID(t)
	r := wire.MustRoom("pool:after")
	old := &closeCounter{}
	f.join(t, r, old)
	for i := range 20 {
		f.publish(t, r, i)
	}
	src.recreated.Store(true)
	f.hub.CheckStream()
	natstest.WaitFor(t, 10*time.Second, func() error {
		if old.closes.Load() == 0 {
			return errors.New("not reset yet")
		}
		return nil
	})
	fresh := &seqMember{}
	var j Joined
	if err := f.hub.Join(t.Context(), r, fresh, nil, func(x Joined) { j = x }); err != nil {
		t.Fatal(err)
	}
	next := f.publish(t, r, 20)
	fresh.waitFor(t, []uint64{next})
	if j.Seq != next-1 {
		t.Fatalf("joined at %d, want %d", j.Seq, next-1)
	}
}

// pausingHeads holds one Heads call after reading the heads, so a test can
// act between the read and the sync it feeds.
type pausingHeads struct {
	Source
	armed   atomic.Bool
	read    chan struct{}
	release chan struct{}
}

func (s *pausingHeads) Heads(ctx context.Context, rooms []wire.Room) (map[wire.Room]uint64, uint64, error) {
	h, l, err := s.Source.Heads(ctx, rooms)
	if s.armed.CompareAndSwap(true, false) {
		close(s.read)
		<-s.release
	}
	return h, l, err
}

// A live event that arrives while its room is stale, after the sync read
// the room's head, is delivered by that sync, not by a later one.
func TestEventDroppedWhileStaleComesWithTheSync(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	src := &pausingHeads{Source: f.bus, read: make(chan struct{}), release: make(chan struct{})}
	f.withSource(t, src, func(o *Options) { o.AntiEntropyInterval = time.Hour })
	r := wire.MustRoom("pool:stale")
	m := f.liveMember(t, r)
	rm := f.room(r)
	src.armed.Store(true)
	rm.feedMu.Lock()
	f.hub.markStale(rm, errors.New("a backfill failed"))
	rm.feedMu.Unlock()
	<-src.read
	s2 := f.publish(t, r, 2) // arrives live while stale: dropped for the sync
	natstest.WaitFor(t, 10*time.Second, func() error {
		rm.feedMu.Lock()
		defer rm.feedMu.Unlock()
		if rm.staleSeen != s2 {
			return errors.New("the live event has not arrived")
		}
		return nil
	})
	close(src.release)
	if got := m.next(t); got != s2 {
		t.Fatalf("seq %d, want %d", got, s2)
	}
}

// A room whose history was purged (or aged out) gets its next event with no
// previous sequence: it is delivered at once, as the next event.
func TestNextEventAfterAPurgeIsDelivered(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	r := wire.MustRoom("pool:purged")
	m := f.liveMember(t, r)
	st, err := f.js.Stream(t.Context(), bus.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(t.Context(), jetstream.WithPurgeSubject(f.bus.Subjects().Room(r))); err != nil {
		t.Fatal(err)
	}
	s2 := f.publish(t, r, 2)
	if got := m.next(t); got != s2 {
		t.Fatalf("seq %d, want %d", got, s2)
	}
	if g := testutil.ToFloat64(f.m.Gaps); g != 0 {
		t.Fatalf("%v gaps: the purge was taken for lost events", g)
	}
}
